# Writes to the error streams; PATH_INFO picks which one. Messages carry a marker the test
# looks for in the error log.
import sys

def application(environ, start_response):
    mode = environ.get('PATH_INFO', '')
    body = 'done'
    if mode == '/wsgi_errors_print':
        print('marker-wsgi-errors-print', file=environ['wsgi.errors'])
    elif mode == '/wsgi_errors_write':
        environ['wsgi.errors'].write('marker-wsgi-errors-write\n')
        environ['wsgi.errors'].writelines(['marker-writelines-1\n', 'marker-writelines-2\n'])
        environ['wsgi.errors'].flush()
    elif mode == '/stderr':
        print('marker-sys-stderr', file=sys.stderr)
        sys.stderr.flush()
    elif mode == '/stdout':
        try:
            print('marker-sys-stdout')
            sys.stdout.flush()
            body = 'printed'
        except Exception as e:
            body = '%s: %s' % (type(e).__name__, e)
    elif mode == '/stdout_uncaught':
        print('marker-uncaught-stdout')
        sys.stdout.flush()
    elif mode == '/stdin':
        try:
            sys.stdin.read()
            body = 'read'
        except Exception as e:
            body = '%s: %s' % (type(e).__name__, e)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode('utf-8')]
