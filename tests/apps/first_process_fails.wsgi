# Fails to load in the first daemon process that tries it (as an import can
# fail for good in one process and work in a fresh one); loads anywhere else.
import os

VAR = os.path.join(os.path.dirname(__file__), 'var')
FIRST = os.path.join(VAR, 'first-pid')

if not os.path.exists(FIRST):
    with open(FIRST + '.tmp', 'w') as f:
        f.write(str(os.getpid()))
    os.rename(FIRST + '.tmp', FIRST)
with open(FIRST) as f:
    if f.read() == str(os.getpid()):
        raise RuntimeError('marker-first-process-cannot-load')


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('pid=%d\n' % os.getpid()).encode('ascii')]
