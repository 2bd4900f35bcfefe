"""``workers.wire_format``: the job codec without the IBM client in the zygote's memory.

Each check runs in a fresh interpreter: what matters is which modules a process
that imports the wire format ends up holding, and that the lazy
``qiskit_ibm_runtime`` package still becomes the full one when program code asks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: Imported by the real ``qiskit_ibm_runtime/__init__.py``, not by ``qiskit_ibm_runtime.json``.
CLIENT = "qiskit_ibm_runtime.qiskit_runtime_service"


def run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_codec_round_trips_without_loading_the_client_which_loads_on_demand() -> None:
    out = run(f"""
        import json, sys
        import numpy as np
        from workers.wire_format import RuntimeDecoder, RuntimeEncoder

        value = {{"array": np.arange(6, dtype=np.float64).reshape(2, 3) / 7, "z": 1.5 - 2.25j}}
        back = json.loads(json.dumps(value, cls=RuntimeEncoder), cls=RuntimeDecoder)
        assert np.array_equal(back["array"], value["array"]) and back["z"] == value["z"], back
        assert {CLIENT!r} not in sys.modules
        from qiskit_ibm_runtime import fake_provider  # a submodule: still no client
        assert fake_provider.FakeManilaV2 and {CLIENT!r} not in sys.modules

        from qiskit_ibm_runtime import QiskitRuntimeService
        import qiskit_ibm_runtime
        assert {CLIENT!r} in sys.modules and type(qiskit_ibm_runtime) is type(sys)
        assert qiskit_ibm_runtime.RuntimeEncoder is RuntimeEncoder
        print(QiskitRuntimeService.__name__, qiskit_ibm_runtime.__version__)
    """)
    name, version = out.split()
    assert name == "QiskitRuntimeService" and version[0].isdigit()


def test_a_package_imported_before_is_left_alone() -> None:
    run("""
        import sys
        import qiskit_ibm_runtime
        import workers.wire_format
        assert sys.modules["qiskit_ibm_runtime"] is qiskit_ibm_runtime and type(qiskit_ibm_runtime) is type(sys)
    """)


def test_a_failure_of_the_deferred_init_is_an_import_error() -> None:
    run("""
        import sys
        import workers.wire_format
        sys.modules["qiskit_ibm_runtime.session"] = None  # the real __init__ imports it
        try:
            from qiskit_ibm_runtime import QiskitRuntimeService
        except ImportError as exc:
            assert "qiskit_ibm_runtime" in str(exc) and isinstance(exc.__cause__, ImportError), exc
        else:
            raise AssertionError("no ImportError")
    """)


def test_no_submodule_name_is_rebound_by_the_package_init() -> None:
    """The lazy package answers a submodule's name with the submodule: the real __init__ must agree."""
    run("""
        import pkgutil, sys
        import qiskit_ibm_runtime as package
        for info in pkgutil.iter_modules(package.__path__):
            value = vars(package).get(info.name)
            assert value is None or value is sys.modules.get(f"qiskit_ibm_runtime.{info.name}"), info.name
    """)
