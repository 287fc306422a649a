# An ASGI application that subscribes to mod_wsgi's events and records them
# in <script dir>/var/events.log, one line each: EVENT <name> <sorted payload
# keys> <details>, as events.wsgi does for WSGI.
import os

import mod_wsgi

LOG = os.path.join(os.path.dirname(__file__), "var", "events.log")


def record(line):
    with open(LOG, "a") as f:
        f.write(line + "\n")


def wrapped(application):
    async def wrapper(scope, receive, send):
        async def send_wrapped(message):
            if message["type"] == "http.response.body":
                message = dict(message, body=b"wrapped:" + message.get("body", b""))
            await send(message)
        await application(scope, receive, send_wrapped)
    return wrapper


def handler(name, **event):
    details = ""
    if name == "request_started":
        details = "path=%s scope_path=%s same_data=%s active=%s" % (
            event["request_environ"]["PATH_INFO"], event["request_scope"]["path"],
            event["request_data"] is mod_wsgi.request_data(), event["request_id"] in mod_wsgi.active_requests)
        event["request_data"]["seen"] = True
        if event["request_environ"]["PATH_INFO"] == "/wrap":
            return {"application_object": wrapped(event["application_object"])}
    elif name == "response_started":
        details = "status=%r headers=%r exception_info=%r same_data=%s" % (
            event["response_status"], event["response_headers"], event["exception_info"],
            event["request_data"] is mod_wsgi.request_data())
    elif name == "request_exception":
        details = "exception=%s" % event["exception_info"][0].__name__
    elif name == "request_finished":
        details = "output_length=%d input_length=%d input_reads=%d seen=%s same_data=%s" % (
            event["output_length"], event["input_length"], event["input_reads"], event["request_data"].get("seen"),
            event["request_data"] is mod_wsgi.request_data())
    record("EVENT %s %s %s" % (name, ",".join(sorted(event)), details))


mod_wsgi.subscribe_events(handler)


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"][len(scope["root_path"]):]
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    if path == "/raise":
        raise ValueError("marker-asgi-exception")
    if path == "/active":
        # From inside the task: request_data() is this request's, and it is the only one running.
        body = ("active=%d data=%r" % (len(mod_wsgi.active_requests), mod_wsgi.request_data())).encode()
    else:
        body = b"ok"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
