# Responses whose declared Content-Length and body disagree, and files for Range
# requests. The query string picks the case:
#   ok              a complete 2-byte response ("ok"), to check a connection after another
#   two             two Content-Length headers, '1' and '5', and a 10-byte body
#   cl=VALUE        Content-Length VALUE (URL-decoded) and the body b'hello'
#   short=N         Content-Length N and a 3-byte iterable body (b'abc')
#   file            <script dir>/data.bin through wsgi.file_wrapper
#   file=N          the same with Content-Length N
#   big             <script dir>/big.bin through wsgi.file_wrapper
import os
from urllib.parse import unquote

DATA = os.path.join(os.path.dirname(__file__), 'data.bin')
BIG = os.path.join(os.path.dirname(__file__), 'big.bin')


def application(environ, start_response):
    case, _, arg = environ.get('QUERY_STRING', '').partition('=')
    arg = unquote(arg)
    headers = [('Content-Type', 'application/octet-stream')]
    if case == 'ok':
        start_response('200 OK', headers + [('Content-Length', '2')])
        return [b'ok']
    if case == 'two':
        start_response('200 OK', headers + [('Content-Length', '1'), ('Content-Length', '5')])
        return [b'0123456789']
    if case == 'cl':
        start_response('200 OK', headers + [('Content-Length', arg)])
        return [b'hello']
    if case == 'short':
        start_response('200 OK', headers + [('Content-Length', arg)])
        return iter([b'abc'])
    if case == 'file':
        if arg:
            headers.append(('Content-Length', arg))
        start_response('200 OK', headers)
        return environ['wsgi.file_wrapper'](open(DATA, 'rb'))
    if case == 'big':
        start_response('200 OK', headers)
        return environ['wsgi.file_wrapper'](open(BIG, 'rb'))
    start_response('404 Not Found', headers)
    return [b'no such case']
