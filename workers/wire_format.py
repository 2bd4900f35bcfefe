"""RuntimeEncoder/RuntimeDecoder without importing the whole IBM client.

Jobs encode their inputs and results with ``qiskit_ibm_runtime.json``, so the
zygote imports it before it forks job processes. But importing any submodule
first runs ``qiskit_ibm_runtime/__init__.py``, which imports the entire IBM
client (service, sessions, pydantic models, requests, ...): ~45 MB of anonymous
memory, where the json module alone needs ~10 MB. Every 4 KiB page of the
zygote costs each job's fork (page-table copy) and exit (unmap), ~0.4 us a
page here: the client's ~35 MB cost ~4 ms of CPU per job, for code no job uses.

So, when ``qiskit_ibm_runtime`` is not imported yet, this module puts a
*lazy package* in ``sys.modules``: the real package's module object (its
``__spec__``, ``__path__``, ``__file__``), with its ``__init__`` not yet run.
Submodules import normally against it. Asking it for an attribute it lacks:

* a submodule's name (``from qiskit_ibm_runtime import fake_provider``, as
  ``workers.backends`` does) imports that submodule only;
* anything else (``QiskitRuntimeService``, ``__version__``, ``import *``) runs
  the real ``__init__`` into this same module object, so every reference to it
  sees the full package, which from then on is a plain module.

``importlib.util.LazyLoader`` does not fit: it loads the package on the first
attribute access of any kind, including the ``__path__`` lookup that importing
``qiskit_ibm_runtime.json`` itself makes.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types

PACKAGE = "qiskit_ibm_runtime"


class _LazyPackage(types.ModuleType):
    """A package whose ``__init__`` runs on the first use of a name it would define."""

    _lock = threading.RLock()
    _loading = False

    def __getattr__(self, name: str) -> object:
        if not name.startswith("__") and importlib.util.find_spec(f"{self.__name__}.{name}") is not None:
            return importlib.import_module(f"{self.__name__}.{name}")
        with _LazyPackage._lock:
            if type(self) is _LazyPackage:  # else another thread loaded it while we waited
                if _LazyPackage._loading:  # a circular import inside __init__: it is partial, as usual
                    raise AttributeError(f"partially initialized module {self.__name__!r} has no attribute {name!r}")
                _load(self)
        return getattr(self, name)


def _load(module: _LazyPackage) -> None:
    """Run the real package's ``__init__`` in ``module``, then make it a plain module."""
    spec = module.__spec__
    _LazyPackage._loading = True
    spec._initializing = True  # what the import system marks, for its "partially initialized" errors
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ImportError(f"loading the {module.__name__} package (deferred by workers.wire_format) "
                          f"failed: {exc!r}", name=module.__name__) from exc
    finally:
        _LazyPackage._loading = False
        spec._initializing = False
    module.__class__ = types.ModuleType


def _install_lazy_package() -> None:
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ImportError(f"{PACKAGE} is not installed as a package", name=PACKAGE)
    module = importlib.util.module_from_spec(spec)  # sets __spec__, __path__, __file__...; runs nothing
    module.__class__ = _LazyPackage
    sys.modules[PACKAGE] = module


_install_lazy_package()

from qiskit_ibm_runtime.json import RuntimeDecoder, RuntimeEncoder  # noqa: E402

__all__ = ["RuntimeDecoder", "RuntimeEncoder"]
