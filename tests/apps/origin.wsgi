# Daemon boundary probe. PATH_INFO picks a behaviour:
#   /mark?NAME   leaves the marker var/NAME (so a test can tell the request ran)
#   /fds         one line per open descriptor: "<fd> <readlink target>", then "pid=<pid>"
#   /head?KIND   a large response head: 'one' (a single 2 MiB header) or 'many' (2048 x 1 KiB)
#   anything else: "ok pid=<pid>"
import os

VAR = os.path.join(os.path.dirname(__file__), 'var')


def fds():
    lines = []
    for name in sorted(os.listdir('/proc/self/fd'), key=int):
        try:
            target = os.readlink('/proc/self/fd/' + name)
        except OSError:
            continue  # the descriptor listdir itself used
        lines.append('%s %s' % (name, target))
    lines.append('pid=%d' % os.getpid())
    return '\n'.join(lines) + '\n'


def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    query = environ.get('QUERY_STRING', '')
    headers = [('Content-Type', 'text/plain')]
    if path == '/mark':
        with open(os.path.join(VAR, query), 'w') as f:
            f.write('ran')
        body = 'marked ' + query
    elif path == '/fds':
        body = fds()
    elif path == '/head':
        if query == 'one':
            headers.append(('X-Big', 'a' * (2 << 20)))
        else:
            headers.extend(('X-H%d' % i, 'b' * 1024) for i in range(2048))
        body = 'big head'
    else:
        body = 'ok pid=%d' % os.getpid()
    start_response('200 OK', headers)
    return [body.encode()]
