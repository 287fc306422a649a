"""PEP 517 build backend: setuptools (with setuptools-rust), after choosing PYO3_PYTHON.

The module is built against the interpreter a virtual environment was made from, named as
it was when the environment was made (``<venv>/bin/python3`` is a symlink to it, usually
``/usr/bin/python3``), not against ``<venv>/bin/python3`` itself: the library and ABI are
the same, the module then holds no path into one environment (so its wheel installs into
any environment of that Python; the environment is chosen at run time with
WSGIPythonHome), and cargo reuses a build made with ``PYO3_PYTHON=/usr/bin/python3`` (the
Makefile's and .cargo/config.toml's) instead of rebuilding pyo3 and the module.

An explicit PYO3_PYTHON in the environment wins. Setting it here matters: setuptools-rust
would otherwise pass sys.executable, and .cargo/config.toml's [env] value never overrides
a variable that is already set.
"""

import os
import sys

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (the PEP 517 hooks)

__all__ = _setuptools.__all__


def base_interpreter():
    """The interpreter this (possibly virtual) environment was made from."""
    if sys.prefix == sys.base_prefix:
        return sys.executable
    bin_dir = os.path.join(sys.prefix, "bin")
    path = sys.executable
    # Follow bin/python -> python3 -> /usr/bin/python3 until it leaves the environment.
    for _ in range(8):
        if os.path.dirname(os.path.abspath(path)) != bin_dir or not os.path.islink(path):
            break
        path = os.path.join(os.path.dirname(path), os.readlink(path))
    if os.path.dirname(os.path.abspath(path)) == bin_dir:
        # A copied interpreter (venv --copies): the one pyvenv.cfg names.
        path = getattr(sys, "_base_executable", sys.executable)
    return os.path.normpath(path)


os.environ.setdefault("PYO3_PYTHON", base_interpreter())
# pyproject.toml's [tool.distutils] build-base / egg-base, which setuptools wants to exist.
os.makedirs(os.path.join("target", "python-build"), exist_ok=True)
