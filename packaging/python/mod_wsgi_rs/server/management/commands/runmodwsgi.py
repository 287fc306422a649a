"""``manage.py runmodwsgi``: serve this Django project with Apache and mod_wsgi (Rust).

Runs mod_wsgi-express (installed beside this package) on the project's WSGI_APPLICATION as
an application module, with the project's base directory on sys.path and STATIC_URL served
from STATIC_ROOT (run ``collectstatic`` first). ``--setup-only`` writes the server root
(start it with its ``apachectl start``); otherwise this process becomes mod_wsgi-express,
which becomes Apache, so Ctrl-C and SIGTERM reach Apache directly.
"""

import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

import mod_wsgi_rs

# Options passed to mod_wsgi-express as they are: (name, type, help).
_VALUE_OPTIONS = [
    ("host", str, "address to listen on (127.0.0.1)"),
    ("port", int, "port to listen on (8000)"),
    ("server-root", str, "where the Apache configuration is written"),
    ("processes", int, "daemon processes (1)"),
    ("threads", int, "threads per daemon process (5)"),
    ("user", str, "user the daemon processes run as, when started as root (www-data)"),
    ("group", str, "group the daemon processes run as, when started as root (www-data)"),
    ("maximum-requests", int, "requests after which a daemon process is replaced"),
    ("request-timeout", int, "seconds a request may take (60)"),
    ("queue-timeout", int, "seconds a request may wait for a daemon (45)"),
    ("python-home", str, "the virtual environment (default: the one this runs in)"),
    ("include-file", str, "an Apache configuration file to include (repeatable)"),
]
_REPEATABLE = {"include-file"}
_FLAGS = [
    ("reload-on-changes", "restart the daemon when a loaded Python file changes"),
    ("log-to-terminal", "Apache's error log goes to this terminal"),
    ("embedded-mode", "run the application in Apache's children, not a daemon"),
]


def _dest(name):
    return name.replace("-", "_")


class Command(BaseCommand):
    help = "Serves this project with Apache and mod_wsgi (Rust), through mod_wsgi-express."

    def add_arguments(self, parser):
        for name, kind, text in _VALUE_OPTIONS:
            action = "append" if name in _REPEATABLE else "store"
            parser.add_argument(f"--{name}", type=kind, action=action, help=text)
        for name, text in _FLAGS:
            parser.add_argument(f"--{name}", action="store_true", help=text)
        parser.add_argument(
            "--url-alias",
            nargs=2,
            action="append",
            metavar=("URL", "PATH"),
            help="serve PATH at URL (repeatable); STATIC_URL -> STATIC_ROOT is added",
        )
        parser.add_argument(
            "--setup-only",
            action="store_true",
            help="write the server root only; start it with its apachectl",
        )

    def handle(self, *args, **options):
        module, callable_name = _application(settings)
        argv = [
            "setup-server" if options["setup_only"] else "start-server",
            f"{module}:{callable_name}",
            "--application-type",
            "module",
            "--python-path",
            str(_base_dir(settings)),
        ]
        for name, _, _ in _VALUE_OPTIONS:
            value = options.get(_dest(name))
            values = (value or []) if name in _REPEATABLE else [value]
            argv += [a for v in values if v is not None for a in (f"--{name}", str(v))]
        for name, _ in _FLAGS:
            if options.get(_dest(name)):
                argv.append(f"--{name}")
        for url, path in _url_aliases(settings, options.get("url_alias") or []):
            if not os.path.exists(path):
                self.stderr.write(f"runmodwsgi: {path} (served at {url}) does not exist yet")
                if url == str(settings.STATIC_URL).rstrip("/"):
                    self.stderr.write("runmodwsgi: run `manage.py collectstatic` to fill it")
            argv += ["--url-alias", url, path]
        try:
            express = mod_wsgi_rs.express_path()
        except FileNotFoundError as e:
            raise CommandError(str(e))
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            os.execv(express, [express, *argv])
        except OSError as e:
            raise CommandError(f"cannot run {express}: {e}")


def _application(settings):
    """WSGI_APPLICATION 'project.wsgi.application' as ('project.wsgi', 'application')."""
    dotted = getattr(settings, "WSGI_APPLICATION", None)
    if not dotted or "." not in dotted:
        raise CommandError(
            f"WSGI_APPLICATION is {dotted!r}: set it in settings to the dotted path of the "
            "WSGI callable, e.g. 'mysite.wsgi.application'"
        )
    module, _, callable_name = dotted.rpartition(".")
    return module, callable_name


def _base_dir(settings):
    """The directory the project's top-level package is in (where manage.py lives)."""
    base = getattr(settings, "BASE_DIR", None)
    if base is not None:
        return os.path.abspath(base)
    top = os.environ["DJANGO_SETTINGS_MODULE"].split(".")[0]
    return os.path.dirname(os.path.dirname(os.path.abspath(sys.modules[top].__file__)))


def _url_aliases(settings, given):
    """STATIC_URL -> STATIC_ROOT first (unless WhiteNoise serves static files), then
    --url-alias pairs."""
    aliases = []
    middleware = getattr(settings, "MIDDLEWARE", None) or []
    static_url = str(getattr(settings, "STATIC_URL", None) or "")
    static_root = str(getattr(settings, "STATIC_ROOT", None) or "")
    whitenoise = "whitenoise.middleware.WhiteNoiseMiddleware" in middleware
    if static_url.startswith("/") and static_root and not whitenoise:
        aliases.append((static_url.rstrip("/") or "/", static_root))
    aliases.extend((url, path) for url, path in given)
    return aliases
