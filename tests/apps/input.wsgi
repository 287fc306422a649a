# Exercises wsgi.input; PATH_INFO picks the reading pattern, the result is `key=ascii(value)`.
import hashlib

def application(environ, start_response):
    inp = environ['wsgi.input']
    mode = environ.get('PATH_INFO', '')
    out = {}
    if mode == '/read':
        out['data'] = inp.read()
        out['again'] = inp.read()
    elif mode == '/read_minus_one':
        out['data'] = inp.read(-1)
    elif mode == '/read_n':
        out['pieces'] = [inp.read(3), inp.read(4), inp.read(100), inp.read(5), inp.read()]
    elif mode == '/readline':
        out['lines'] = [inp.readline(), inp.readline(), inp.readline(), inp.readline()]
    elif mode == '/readline_size':
        out['lines'] = [inp.readline(4), inp.readline(4), inp.readline(100), inp.readline(2)]
    elif mode == '/readlines':
        out['lines'] = inp.readlines()
        out['after'] = inp.readlines()
    elif mode == '/iter':
        out['lines'] = [line for line in inp]
    elif mode == '/eof':
        out['data'] = inp.read(1000)
        out['eof'] = [inp.read(), inp.read(10), inp.readline(), inp.read(10)]
    elif mode == '/md5':
        h = hashlib.md5()
        total = 0
        pieces = 0
        while True:
            piece = inp.read(65536)
            if not piece:
                break
            h.update(piece)
            total += len(piece)
            pieces += 1
        out['length'] = total
        out['md5'] = h.hexdigest()
        out['pieces'] = pieces
    elif mode == '/content_length':
        out['CONTENT_LENGTH'] = environ.get('CONTENT_LENGTH')
        out['data'] = inp.read()
    body = ''.join('%s=%s\n' % (k, ascii(v)) for k, v in sorted(out.items())).encode('ascii')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
