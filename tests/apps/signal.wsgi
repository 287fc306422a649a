# signal.signal() at import time and inside a request (WSGIRestrictSignal).
import signal


def on_term(signum, frame):
    pass


registered_at_import = signal.signal(signal.SIGTERM, on_term)


def application(environ, start_response):
    try:
        result = signal.signal(signal.SIGUSR1, on_term) is on_term
    except ValueError as e:
        result = 'ValueError: %s' % e
    body = 'import=%s\nrequest=%s\n' % (registered_at_import is on_term, result)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
