# One 1 MiB bytes object in a list: measures the response write path
# (copying/bucketing a large buffer into the output filters).
BODY = b"x" * (1 << 20)


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]
