"""``RuntimeService``: the seed's ``provider.runtime``, talking to a qruntime API.

Code written for the seed changes one line, how the service is obtained::

    provider = RuntimeService()          # was: IBMQ.load_account(); IBMQ.get_provider(...)
    provider.runtime.pprint_programs()   # ``runtime`` is the service itself
    job = provider.runtime.run("runtime-simple", options={"backend_name": "aer_simulator"},
                               inputs={"iterations": 3}, callback=print)
    print(job.result())

Program upload, update, deletion and visibility come from
:class:`~qruntime.client.management.ProgramManagement`.
"""

from __future__ import annotations

import warnings
from typing import Any

from qruntime.client import account
from qruntime.client.backend import RuntimeBackend
from qruntime.client.decoder import ResultDecoder, encode_json
from qruntime.client.http import ApiClient
from qruntime.client.job import Callback, RuntimeJob
from qruntime.client.management import ProgramManagement
from qruntime.client.options import RuntimeOptions
from qruntime.client.program import ParameterNamespace, RuntimeProgram
from qruntime.exceptions import QiskitBackendNotFoundError


class RuntimeService(ProgramManagement):
    """Run programs on a qruntime server and manage their jobs and programs.

    Any method that talks to the server raises ``IBMQNotAuthorizedError`` when the
    token is missing or invalid (HTTP 401) or its role may not do what was asked (403).

    Args:
        url: the API's base URL; default ``QRT_URL``, then the saved account,
            then ``http://127.0.0.1:8000`` (where ``qruntime up`` listens).
        token: bearer token; default ``QRT_TOKEN``, then the saved account's.
    """

    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        self.url, token = account.resolve(url, token)
        self._api = ApiClient(self.url, token)
        self._programs: dict[str, RuntimeProgram] = {}
        self._programs_complete = False
        if token is None:
            self._check_no_token_is_needed()

    def _check_no_token_is_needed(self) -> None:
        """Fail now, saying how to get a token, when the service needs one (only a
        ``QRT_AUTH=off`` service does not); an unreachable service fails at first use."""
        from qruntime.exceptions import IBMQAccountError, IBMQNotAuthorizedError, RequestsApiError

        try:
            self._api.me()
        except IBMQNotAuthorizedError as exc:
            raise IBMQAccountError(str(exc)) from None
        except RequestsApiError:
            pass

    def __repr__(self) -> str:
        return f"<RuntimeService('{self.url}')>"

    # -- accounts ---------------------------------------------------------------------

    @staticmethod
    def save_account(url: str, token: str | None = None, overwrite: bool = False) -> None:
        """Save ``token`` for ``url`` and make ``url`` the default for ``RuntimeService()``.

        Accounts of other URLs are kept; one already saved for ``url`` is kept (with a
        warning) unless ``overwrite``.
        """
        account.save_account(url, token, overwrite=overwrite)

    @staticmethod
    def delete_account(url: str | None = None) -> bool:
        """Forget the account saved for ``url`` (without one: every saved account); True if there was one."""
        return account.delete_account(url)

    @staticmethod
    def saved_account(url: str | None = None) -> dict[str, str | None]:
        """The ``{"url", "token"}`` saved for ``url`` (default: the default account); empty if none."""
        return account.load_account(url)

    @staticmethod
    def saved_accounts() -> list[dict]:
        """Every saved account as ``{"url", "default", "has_token"}`` (tokens are not shown)."""
        return account.saved_accounts()

    @property
    def runtime(self) -> RuntimeService:
        """The service itself, so seed code's ``provider.runtime.…`` keeps working."""
        return self

    # -- programs -----------------------------------------------------------------------

    def pprint_programs(self, refresh: bool = False, detailed: bool = False,
                        limit: int | None = 20, skip: int = 0) -> None:
        """Print the programs: id, name and description, or everything with ``detailed``."""
        for program in self.programs(refresh, limit, skip):
            print("=" * 50)
            if detailed:
                print(str(program))
            else:
                print(f"{program.program_id}:")
                print(f"  Name: {program.name}")
                print(f"  Description: {program.description}")

    def programs(self, refresh: bool = False, limit: int | None = 20, skip: int = 0) -> list[RuntimeProgram]:
        """The programs the caller may run (fetched once, then cached until ``refresh``).

        Args:
            refresh: ask the server again instead of using the cache.
            limit: how many to return (None: all).
            skip: how many to skip first.
        """
        if refresh or not self._programs_complete:
            self._programs = {raw["id"]: RuntimeProgram.from_api(raw, self._api.get_program)
                              for raw in self._api.programs()}
            self._programs_complete = True
        skip = skip or 0
        end = None if limit is None else skip + limit
        return list(self._programs.values())[skip:end]

    def program(self, program_id: str, refresh: bool = False) -> RuntimeProgram:
        """One program's metadata.

        Raises:
            RuntimeProgramNotFound: no program with that id is visible.
            QiskitRuntimeError: the request failed otherwise.
        """
        if refresh or program_id not in self._programs:
            raw = self._api.get_program(program_id)
            self._programs[program_id] = RuntimeProgram.from_api(raw, self._api.get_program)
        return self._programs[program_id]

    # -- running ------------------------------------------------------------------------

    def run(self, program_id: str, options: RuntimeOptions | dict[str, Any],
            inputs: dict[str, Any] | ParameterNamespace, callback: Callback | None = None,
            result_decoder: type[ResultDecoder] | None = None, image: str | None = "") -> RuntimeJob:
        """Run a program; returns at once with the (queued) job.

        Args:
            program_id: the program to run.
            options: ``RuntimeOptions`` or a dict of its fields (``backend_name`` required).
            inputs: the program's inputs, a dict or a filled-in ``ParameterNamespace``.
            callback: called as ``callback(job_id, interim_result)`` for each interim result.
            result_decoder: decodes interim and final results (default ``ResultDecoder``).
            image: deprecated, as in the seed; pass it in ``options``.

        Raises:
            IBMQInputValueError: options or inputs are invalid (the seed's messages).
            TypeError: ``options`` has an unknown key.
            QiskitBackendNotFoundError: the server knows no backend of that name.
            RequestsApiError: the server refused the job otherwise.
        """
        if isinstance(options, dict):
            options = RuntimeOptions(**options)
        if image:
            warnings.warn("Passing the 'image' keyword to RuntimeService.run is deprecated. "
                          "Please pass it in as part of 'options'.", DeprecationWarning, stacklevel=2)
            options.image = image
        options.validate()
        if isinstance(inputs, ParameterNamespace):
            inputs.validate()
            inputs = inputs.to_inputs()
        body: dict[str, Any] = {"program_id": program_id, "backend": options.backend_name,
                                "params": inputs, "runtime": options.image or None}
        if options.log_level:
            body["log_level"] = options.log_level
        if options.version:
            body["version"] = str(options.version)
        if options.max_execution_time:
            body["max_execution_time"] = options.max_execution_time
        raw = self._api.submit_job(encode_json(body))
        return RuntimeJob(self._api, raw["id"], program_id, backend_name=raw.get("backend", ""),
                          params=inputs, creation_date=raw.get("created"), user_callback=callback,
                          result_decoder=result_decoder, image=options.image or "",
                          api_status=raw.get("status"), last_event_id=int(raw.get("last_event_id") or 0))

    # -- jobs -----------------------------------------------------------------------------

    def job(self, job_id: str) -> RuntimeJob:
        """A job by id.

        Raises:
            RuntimeJobNotFound: no job with that id is visible.
            QiskitRuntimeError: the request failed otherwise.
        """
        return RuntimeJob.from_api(self._api, self._api.get_job(job_id))

    def jobs(self, limit: int | None = 10, skip: int = 0, pending: bool | None = None,
             program_id: str | None = None) -> list[RuntimeJob]:
        """The caller's jobs, newest first.

        Args:
            limit: how many at most (None: all).
            skip: how many of the newest to skip.
            pending: True for QUEUED/RUNNING only, False for ended jobs only, None for all.
            program_id: only jobs of this program.
        """
        found = self._api.jobs(limit, skip or 0, pending=pending, program_id=program_id)
        return [RuntimeJob.from_api(self._api, raw) for raw in found]

    def delete_job(self, job_id: str) -> None:
        """Delete a job (cancelling it first if it is still running) and all it left.

        Raises:
            RuntimeJobNotFound: no job with that id is visible.
            QiskitRuntimeError: the request failed otherwise.
        """
        self._api.delete_job(job_id)

    # -- backends -------------------------------------------------------------------------

    def backends(self, name: str | None = None) -> list[RuntimeBackend]:
        """The server's backends (each with a ``name``), optionally only the one named."""
        found = [RuntimeBackend.from_api(raw) for raw in self._api.list_backends()]
        return [b for b in found if b.matches(name)] if name else found

    def get_backend(self, name: str) -> RuntimeBackend:
        """The backend called ``name`` (or having it as an alias).

        Raises:
            QiskitBackendNotFoundError: there is none.
        """
        found = self.backends(name)
        if not found:
            raise QiskitBackendNotFoundError(f"No backend matches the criteria: {name}")
        return found[0]
