"""qruntime: a self-hosted Qiskit Runtime.

This package is what users import: the client (``RuntimeService``, ``RuntimeJob``,
``RuntimeProgram``) and the ``qruntime`` command line. It never imports the
server packages at import time.
"""

__version__ = "0.1.0"
