# The example application `make run` serves.

def application(environ, start_response):
    body = (
        "Hello from mod_wsgi (Rust) on Apache %s.\n"
        "SCRIPT_NAME=%r PATH_INFO=%r\n"
        "wsgi.multithread=%r wsgi.multiprocess=%r\n"
        % (
            ".".join(map(str, environ["apache.version"])),
            environ["SCRIPT_NAME"],
            environ["PATH_INFO"],
            environ["wsgi.multithread"],
            environ["wsgi.multiprocess"],
        )
    ).encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
