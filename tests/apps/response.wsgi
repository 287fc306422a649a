# Response behaviours; PATH_INFO picks one. Iterables record close() by creating a file in
# <script dir>/var, where the test looks for it.
import os
import sys
import time

VAR = os.path.join(os.path.dirname(__file__), 'var')

def mark(name, text=''):
    with open(os.path.join(VAR, name), 'w') as f:
        f.write(text)

class Tracked:
    """An iterable over `gen` whose close() leaves the marker file `closed-<tag>`."""
    def __init__(self, tag, gen):
        self.tag = tag
        self.gen = gen
        self.count = 0
    def __iter__(self):
        for item in self.gen:
            self.count += 1
            yield item
    def close(self):
        mark('closed-' + self.tag, str(self.count))

def wait_for(name, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(os.path.join(VAR, name)):
            return True
        time.sleep(0.02)
    return False

def stream():
    yield b'first;'
    # Only continues once the test has seen the first chunk: proves it was not buffered.
    yield b'second;' if wait_for('stream-go') else b'timeout;'
    yield b'third'

def fail_midway():
    yield b'a'
    raise RuntimeError('marker-mid-iteration-failure')

def endless():
    for i in range(600):
        yield b'x' * 65536
        time.sleep(0.05)

def application(environ, start_response):
    mode = environ.get('PATH_INFO', '')
    text = [('Content-Type', 'text/plain')]
    if mode == '/status':
        start_response('201 Created', [('Content-Type', 'text/plain'), ('X-Test', 'value 1'),
                                       ('X-Multi', 'a'), ('X-Multi', 'b')])
        return [b'created']
    if mode == '/write':
        write = start_response('200 OK', text)
        write(b'part1-')
        write(b'part2-')
        return [b'part3']
    if mode == '/stream':
        start_response('200 OK', text)
        return stream()
    if mode == '/generator':
        start_response('200 OK', text)
        return (piece for piece in [b'one-', b'two'])
    if mode == '/close_ok':
        start_response('200 OK', text)
        return Tracked('ok', iter([b'a', b'b']))
    if mode == '/close_exc':
        start_response('200 OK', text)
        return Tracked('exc', fail_midway())
    if mode == '/close_disconnect':
        start_response('200 OK', text)
        return Tracked('disconnect', endless())
    if mode == '/content_length_cut':
        start_response('200 OK', text + [('Content-Length', '5')])
        return [b'01234', b'56789']
    if mode == '/head':
        start_response('200 OK', text + [('X-Method', environ['REQUEST_METHOD'])])
        return [b'body of the get']
    if mode == '/start_twice':
        start_response('200 OK', text)
        try:
            start_response('202 Accepted', text)
            result = 'no error'
        except Exception as e:
            result = '%s: %s' % (type(e).__name__, e)
        return [result.encode('utf-8')]
    if mode == '/exc_info_replace':
        start_response('200 OK', text + [('X-Dropped', 'yes')])
        try:
            raise ValueError('first attempt failed')
        except ValueError:
            start_response('503 Replaced', text, sys.exc_info())
        return [b'replaced']
    if mode == '/exc_info_after_headers':
        write = start_response('200 OK', text)
        write(b'already sent')
        try:
            raise ValueError('marker-exc-info-after-headers')
        except ValueError:
            start_response('500 Too Late', text, sys.exc_info())
        return [b'not reached']
    if mode == '/single_list':
        start_response('200 OK', text)
        return [b'single']
    if mode == '/empty':
        start_response('204 No Content', [])
        return []
    start_response('404 Not Found', text)
    return [b'unknown mode']
