# Returns <script dir>/data.bin through wsgi.file_wrapper; PATH_INFO picks the variant.
import os

DATA = os.path.join(os.path.dirname(__file__), 'data.bin')

def application(environ, start_response):
    mode = environ.get('PATH_INFO', '')
    headers = [('Content-Type', 'application/octet-stream')]
    f = open(DATA, 'rb')
    if mode == '/seek':
        # Sending starts at the file's current position.
        f.seek(1000)
    elif mode == '/cut':
        headers.append(('Content-Length', '4096'))
    elif mode == '/seek_and_length':
        f.seek(10)
        headers.append(('Content-Length', '100'))
    elif mode == '/blksize':
        start_response('200 OK', headers)
        return environ['wsgi.file_wrapper'](f, 1000)
    start_response('200 OK', headers)
    return environ['wsgi.file_wrapper'](f)
