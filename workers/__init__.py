"""The Celery side of qruntime: the app and its task, the supervisor, the job
zygote and its confined children (docs/sandbox.md), the user messenger, the
backend catalogue and the reaper.

Qiskit's Rust thread pool does not survive ``fork``: a child that transpiles after
its parent transpiled deadlocks. ``QISKIT_IN_PARALLEL=TRUE`` makes qiskit run
serially after a fork; it must be set before qiskit is first imported, which is
why it is set here, on import of the package.
"""

import os

os.environ.setdefault("QISKIT_IN_PARALLEL", "TRUE")
