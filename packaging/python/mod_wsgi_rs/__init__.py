"""mod_wsgi in Rust, installed with pip: the Apache module and mod_wsgi-express.

``module_path()`` is the module for Apache's LoadModule line; ``express_path()`` is the
mod_wsgi-express installed beside this package. Add ``mod_wsgi_rs.server`` to Django's
INSTALLED_APPS for ``manage.py runmodwsgi``.
"""

import os
import shutil
import sysconfig

__all__ = ["module_path", "express_path"]

_MODULE_PREFIX = "mod_wsgi-apache."
_EXPRESS = "mod_wsgi-express"


def module_path():
    """The Apache module (wsgi_module) built for this Python, inside this package."""
    here = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(here)):
        if name.startswith(_MODULE_PREFIX) and name.endswith(".so"):
            return os.path.join(here, name)
    raise FileNotFoundError(
        f"no {_MODULE_PREFIX}*.so in {here}: reinstall with `pip install` from the mod_wsgi "
        "(Rust) source tree"
    )


def express_path():
    """mod_wsgi-express as pip installed it with this package (its scheme's scripts dir)."""
    here = os.path.dirname(os.path.abspath(__file__))
    schemes = [sysconfig.get_default_scheme(), f"{os.name}_user"]
    for scheme in schemes:
        try:
            paths = sysconfig.get_paths(scheme)
        except KeyError:
            continue
        if os.path.dirname(here) in (paths["purelib"], paths["platlib"]):
            candidate = os.path.join(paths["scripts"], _EXPRESS)
            if os.access(candidate, os.X_OK):
                return candidate
    found = shutil.which(_EXPRESS)
    if found:
        return found
    raise FileNotFoundError(
        f"{_EXPRESS} not found beside {here} nor on PATH: reinstall with `pip install`"
    )
