# Reports the interpreter settings that WSGIPython* directives control.
import locale
import os
import sys
import threading


def application(environ, start_response):
    report = {
        'hash_randomization': sys.flags.hash_randomization,
        'hash': hash('mod_wsgi'),
        'dont_write_bytecode': sys.dont_write_bytecode,
        'warnoptions': sys.warnoptions,
        'egg_cache': os.environ.get('PYTHON_EGG_CACHE'),
        'utf8_mode': sys.flags.utf8_mode,
        'filesystem_encoding': sys.getfilesystemencoding(),
        'preferred_encoding': locale.getpreferredencoding(False),
        'lc_ctype': os.environ.get('LC_CTYPE'),
        'main_thread': threading.current_thread() is threading.main_thread(),
    }
    body = ''.join('%s=%s\n' % (k, ascii(v)) for k, v in report.items())
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
