# Invalid responses; PATH_INFO picks one. Each should become a 500 plus a log line.
def application(environ, start_response):
    mode = environ.get('PATH_INFO', '')
    text = [('Content-Type', 'text/plain')]
    if mode == '/status_no_reason':
        start_response('200', text)
    elif mode == '/status_not_numeric':
        start_response('abc', text)
    elif mode == '/status_newline':
        start_response('200 OK\nX-Injected: 1', text)
    elif mode == '/status_not_str':
        start_response(200, text)
    elif mode == '/header_name_space':
        start_response('200 OK', [('X Bad', 'v')])
    elif mode == '/header_value_crlf':
        start_response('200 OK', [('X-Bad', 'v\r\nX-Injected: 1')])
    elif mode == '/header_value_non_latin1':
        start_response('200 OK', [('X-Bad', 'snow \u2603')])
    elif mode == '/header_value_not_str':
        start_response('200 OK', [('X-Bad', 42)])
    elif mode == '/header_not_tuple':
        start_response('200 OK', ['X-Bad: v'])
    elif mode == '/headers_not_list':
        start_response('200 OK', (('X-Bad', 'v'),))
    elif mode == '/body_str':
        start_response('200 OK', text)
        return ['a str, not bytes']
    elif mode == '/body_none':
        start_response('200 OK', text)
        return None
    elif mode == '/no_start_response':
        return [b'body without start_response']
    return [b'should not be sent']
