"""Remote Qiskit primitives: ``Sampler`` and ``Estimator`` that run as qruntime jobs.

They implement Qiskit's ``BaseSamplerV2`` / ``BaseEstimatorV2``, so code written
against ``qiskit.primitives`` (or a library built on primitives) runs on a
qruntime backend by swapping the primitive::

    sampler = qruntime.Sampler(backend="ibmq_montreal")
    counts = sampler.run([circuit], shots=1000).result()[0].data.meas.get_counts()

Each ``run`` coerces the PUBs here (so malformed ones fail at once, as with any
Qiskit primitive) and submits one job of the built-in ``sampler`` / ``estimator``
program, which transpiles for the backend and runs Aer's V2 primitive there.
The returned job's ``result()`` is the ``PrimitiveResult``, decoded from the
RuntimeEncoder wire format.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qiskit.primitives import BaseEstimatorV2, BasePrimitiveJob, BaseSamplerV2
from qiskit.primitives.containers.estimator_pub import EstimatorPub, EstimatorPubLike
from qiskit.primitives.containers.sampler_pub import SamplerPub, SamplerPubLike
from qiskit.providers import JobStatus

from qruntime.client.job import RuntimeJob
from qruntime.client.service import RuntimeService

DEFAULT_BACKEND = "aer_simulator"
DEFAULT_SHOTS = 1024
#: Options passed on to the programs as inputs, besides shots/precision.
PROGRAM_OPTIONS = ("seed", "optimization_level", "skip_transpilation")


class RuntimePrimitiveJob(BasePrimitiveJob):
    """A primitive's job: a ``RuntimeJob`` seen through Qiskit's ``BasePrimitiveJob``."""

    def __init__(self, runtime_job: RuntimeJob) -> None:
        super().__init__(runtime_job.job_id())
        self.runtime_job = runtime_job

    def result(self, timeout: float | None = None) -> Any:
        """The ``PrimitiveResult``; waits for the job to end.

        Raises:
            RuntimeJobFailureError: the job failed.
        """
        return self.runtime_job.result(timeout=timeout)

    def status(self) -> JobStatus:
        return self.runtime_job.status()

    def done(self) -> bool:
        return self.status() is JobStatus.DONE

    def running(self) -> bool:
        return self.status() is JobStatus.RUNNING

    def cancelled(self) -> bool:
        return self.status() is JobStatus.CANCELLED

    def in_final_state(self) -> bool:
        return self.status() in (JobStatus.DONE, JobStatus.CANCELLED, JobStatus.ERROR)

    def cancel(self) -> None:
        self.runtime_job.cancel()


class _RemotePrimitive:
    """What Sampler and Estimator share: where they run and how they submit."""

    program_id = ""

    def __init__(self, backend: Any = DEFAULT_BACKEND, service: RuntimeService | None = None,
                 options: dict[str, Any] | None = None) -> None:
        """
        Args:
            backend: a backend name (or an object with ``.name``), e.g. ``"ibmq_montreal"``.
            service: the qruntime service to use (default ``RuntimeService()``, the saved account).
            options: ``seed``, ``optimization_level``, ``skip_transpilation`` and
                ``default_shots`` (Sampler) / ``default_precision`` (Estimator).
        """
        self.backend = backend if isinstance(backend, str) else backend.name
        self.service = service if service is not None else RuntimeService()
        self.options: dict[str, Any] = dict(options or {})

    def _submit(self, inputs: dict[str, Any]) -> RuntimePrimitiveJob:
        for key in PROGRAM_OPTIONS:
            if self.options.get(key) is not None:
                inputs[key] = self.options[key]
        job = self.service.run(self.program_id, {"backend_name": self.backend}, inputs)
        return RuntimePrimitiveJob(job)


class Sampler(_RemotePrimitive, BaseSamplerV2):
    """SamplerV2 running on a qruntime backend (the built-in ``sampler`` program)."""

    program_id = "sampler"

    def run(self, pubs: Iterable[SamplerPubLike], *, shots: int | None = None) -> RuntimePrimitiveJob:
        shots = shots if shots is not None else self.options.get("default_shots", DEFAULT_SHOTS)
        coerced = [SamplerPub.coerce(pub, shots) for pub in pubs]
        return self._submit({"pubs": coerced, "shots": shots})


class Estimator(_RemotePrimitive, BaseEstimatorV2):
    """EstimatorV2 running on a qruntime backend (the built-in ``estimator`` program).

    ``precision`` 0 (the default) gives exact expectation values for the backend.
    """

    program_id = "estimator"

    def run(self, pubs: Iterable[EstimatorPubLike], *, precision: float | None = None) -> RuntimePrimitiveJob:
        precision = precision if precision is not None else self.options.get("default_precision", 0.0)
        coerced = [EstimatorPub.coerce(pub, precision) for pub in pubs]
        return self._submit({"pubs": coerced, "precision": precision})
