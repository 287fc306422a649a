# An ASGI WSGIHandlerScript: handle_request() answers with what the scope's
# mod_wsgi extension says of the request, and writes to stdout, stderr and
# the logging module, which the daemon sends to Apache's error log.
import logging
import os
import sys


async def handle_request(scope, receive, send):
    if scope["query_string"] == b"log":
        print("printed by the task")
        print("written to stderr by the task", file=sys.stderr)
        logging.getLogger("asgi.handler").warning("logged by the task")
    ours = dict(scope["extensions"]["mod_wsgi"])
    ours["pid"] = os.getpid()
    body = "".join("%s=%s\n" % (k, ascii(v)) for k, v in sorted(ours.items())).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
