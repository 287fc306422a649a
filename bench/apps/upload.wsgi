# Reads the whole request body from wsgi.input in 64 KiB chunks, the way
# typical frameworks do, and answers with the byte count: measures the
# request-body read path.
CHUNK = 64 * 1024


def application(environ, start_response):
    stream = environ["wsgi.input"]
    total = 0
    try:
        while True:
            data = stream.read(CHUNK)
            if not data:
                break
            total += len(data)
    except OSError:
        # wrk drops in-flight uploads when a run ends; answering instead of
        # raising keeps those expected aborts out of the error log, while a
        # spurious read error mid-run still shows up in wrk as a non-2xx.
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"incomplete body\n"]
    body = str(total).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
