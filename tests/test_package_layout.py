"""The installed package cannot be shadowed by the clone it was installed from.

A clone is usually a folder named ``qruntime``; a script run from the folder above
it must still import the package, not the clone as an empty namespace package
(build_backend/qruntime_build.py says how the editable install makes sure).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_a_script_run_beside_a_clone_named_qruntime_imports_the_real_package(tmp_path: Path) -> None:
    (tmp_path / "qruntime").symlink_to(REPO, target_is_directory=True)  # the clone, as `git clone` names it
    script = "import qruntime; from qruntime import RuntimeService; print(qruntime.__file__)"
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).resolve() == REPO / "qruntime" / "__init__.py"
