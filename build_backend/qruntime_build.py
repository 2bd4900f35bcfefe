"""qruntime's build backend: setuptools, with editable installs that put the checkout on ``sys.path``.

setuptools' default editable install finds the package through an import hook
that Python consults *after* its path search. Run a script from the folder above
a clone named ``qruntime`` and the path search finds the clone itself first, a
directory without ``__init__.py``, and imports it as an empty namespace package:
``ImportError: cannot import name 'RuntimeService' from 'qruntime'``. The
``compat`` editable mode instead adds the checkout to ``sys.path`` with a
``.pth`` file, so the path search finds the real package and that trap cannot
happen, whatever the clone is called or where a script runs from. Everything
else is setuptools as it is.
"""

from __future__ import annotations

from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 - every other hook is setuptools' own


def build_editable(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                   metadata_directory: str | None = None) -> str:
    settings = {**(config_settings or {}), "editable_mode": "compat"}
    return _setuptools.build_editable(wheel_directory, settings, metadata_directory)
