"""Where a service's processes keep their Prometheus samples (prometheus_client's multiprocess mode).

Kept apart from orchestrator/metrics.py and free of imports beyond the standard
library, because gunicorn's master loads it (orchestrator/gunicorn_conf.py)
before it forks workers that gevent then patches.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Name prefix of the samples folder made for one worker or API (removed when it stops).
SAMPLES_DIR_PREFIX = "qrt-metrics-"


def samples_dir_env(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` with a fresh, private samples folder, unless the operator named one."""
    if environ.get(MULTIPROC_ENV):
        return environ
    return {**environ, MULTIPROC_ENV: tempfile.mkdtemp(prefix=SAMPLES_DIR_PREFIX)}


def remove_samples_dir() -> None:
    """Remove this service's samples folder if :func:`samples_dir_env` made it."""
    folder = os.environ.get(MULTIPROC_ENV, "")
    if os.path.basename(folder.rstrip("/")).startswith(SAMPLES_DIR_PREFIX):
        shutil.rmtree(folder, ignore_errors=True)


def forget_process(pid: int) -> None:
    """Drop an ended process's live gauges (what ``multiprocess.mark_process_dead`` does); counters stay."""
    folder = os.environ.get(MULTIPROC_ENV)
    if folder:
        for path in glob.glob(os.path.join(folder, f"gauge_live*_{pid}.db")):
            os.remove(path)
