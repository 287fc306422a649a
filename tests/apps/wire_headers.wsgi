# Response heads whose bytes on the wire matter; the query string picks one.
# Every case has a fixed body and no Content-Length unless it says so.

CASES = {
    # Latin-1 in a header value and in a reason phrase: one byte each on the wire.
    'latin1_value': ('200 OK', [('X-Name', 'caf\xe9')], [b'ok']),
    'latin1_reason': ('200 caf\xe9', [], [b'ok']),
    # Header names that pass start_response (PEP 3333 asks only for no control
    # characters or spaces) but are not HTTP tokens.
    'name_separators': ('200 OK', [('X(A)@', 'v')], [b'ok']),
    'name_colon': ('200 OK', [('X:Y', 'v')], [b'ok']),
    'name_latin1': ('200 OK', [('X-caf\xe9', 'v')], [b'ok']),
    'name_control': ('200 OK', [('X-\x01', 'v')], [b'ok']),
    # A control character in a value passes start_response (only CR and LF
    # are refused there) but not httpd.
    'value_control': ('200 OK', [('X-Value', 'a\x01b')], [b'ok']),
    # No body and no Content-Length.
    'empty_list': ('200 OK', [], []),
    'empty_bytes': ('200 OK', [], [b'']),
    'plain': ('200 OK', [], [b'plain']),
}


def generate(body):
    yield from body


def application(environ, start_response):
    # `<case>` returns a list; `<case>&stream` a generator, whose items are
    # flushed as they come.
    case, _, how = environ['QUERY_STRING'].partition('&')
    status, headers, body = CASES[case]
    start_response(status, [('Content-Type', 'text/plain')] + headers)
    return generate(body) if how == 'stream' else body
