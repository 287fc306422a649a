# Reports its process and logs from an atexit handler, which runs only when
# Python is finalised as the Apache child exits.
import atexit
import os
import sys

def goodbye():
    print('marker-atexit pid=%d' % os.getpid(), file=sys.stderr)
    sys.stderr.flush()

atexit.register(goodbye)

def application(environ, start_response):
    body = ('pid=%d\n' % os.getpid()).encode('ascii')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
