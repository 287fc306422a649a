# A plain ASGI 3 application (no framework), for tests/asgi.rs. Lifespan
# events are appended to var/lifespan.log next to this file.
import asyncio
import hashlib
import os

LOG = os.path.join(os.path.dirname(__file__), "var", "lifespan.log")
# Piece j of /pieces is PATTERN[j:j + size].
PATTERN = bytes(range(251)) * 4200


def note(what):
    with open(LOG, "a") as f:
        f.write("%s %d\n" % (what, os.getpid()))


def text(b):
    return b.decode("latin-1")


async def lifespan(scope, receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            note("startup")
            scope["state"]["greeting"] = "hello from startup"
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            note("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive):
    pieces = []
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        pieces.append(message["body"])
        if not message.get("more_body", False):
            return b"".join(pieces), len(pieces)


async def respond(send, status, body, headers=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))] + list(headers)})
    await send({"type": "http.response.body", "body": body})


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    path = scope["path"][len(scope["root_path"]):]
    if path.startswith("/scope"):
        body, events = await read_body(receive)
        shown = dict(scope)
        shown["body_md5"] = hashlib.md5(body).hexdigest()
        shown["body_length"] = len(body)
        shown["body_events"] = events
        shown["pid"] = os.getpid()
        lines = ["%s=%s" % (k, ascii(v)) for k, v in sorted(shown.items())]
        await respond(send, 200, "\n".join(lines).encode())
        after = await receive()
        note("after-response " + after["type"])
    elif path == "/stream":
        chunks = int(text(scope["query_string"]).split("=")[1])
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]})
        for i in range(chunks):
            await send({"type": "http.response.body", "body": bytes([i % 256]) * 65536, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/events":
        # Server-sent events until the client goes: a receive() waits for http.disconnect
        # meanwhile, as SSE libraries do.
        async def watch():
            while (await receive())["type"] != "http.disconnect":
                pass
            note("watch http.disconnect")
        watcher = asyncio.ensure_future(watch())
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        n = 0
        try:
            while True:
                await send({"type": "http.response.body", "body": b"data: %d\n\n" % n, "more_body": True})
                n += 1
                await asyncio.sleep(0.05)
        except OSError as exc:
            note("events-ended %s" % type(exc).__name__)
        await asyncio.wait_for(watcher, 5)
    elif path == "/long-poll":
        # Awaits an event that never comes, sending nothing: only
        # http.disconnect ends it, when the client goes.
        await read_body(receive)
        started = asyncio.get_running_loop().time()
        message = await receive()
        waited = asyncio.get_running_loop().time() - started
        note("long-poll %s after %.1fs" % (message["type"], waited))
        try:
            await send({"type": "http.response.start", "status": 200})
        except OSError as exc:
            note("long-poll send raised %s" % type(exc).__name__)
    elif path == "/head-first":
        # The head goes out with an empty piece, before a body that comes late.
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        await asyncio.sleep(2)
        await send({"type": "http.response.body", "body": b"late"})
    elif path == "/file":
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.pathsend", "path": os.path.join(os.path.dirname(__file__), "data.bin")})
    elif path == "/raise-before":
        raise ValueError("raised before the response start")
    elif path == "/raise-after":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("raised after the response start")
    elif path == "/no-start":
        return
    elif path == "/bad-header":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"bad name", b"x")]})
    elif path == "/pieces":
        # ?sizes=a,b,c[&length]: pieces of those sizes, each sent as the
        # response sets them out, with a Content-Length when asked.
        query = text(scope["query_string"]).split("&")
        sizes = [int(n) for n in query[0].split("=")[1].split(",") if n]
        headers = [(b"content-type", b"application/octet-stream")]
        if "length" in query:
            headers.append((b"content-length", b"%d" % sum(sizes)))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for j, size in enumerate(sizes):
            await send({"type": "http.response.body", "body": PATTERN[j:j + size], "more_body": j + 1 < len(sizes)})
        if not sizes:
            await send({"type": "http.response.body", "body": b""})
    elif path == "/then-work":
        # Work after the response is complete (a background task, as
        # Starlette's BackgroundTasks runs them), which may fail.
        # A large body goes out from a relay thread, with the receive()
        # below already asked.
        big = scope["query_string"] == b"big"
        await respond(send, 200, b"answered" + (b" " * 100000 if big else b""))
        note("after the response " + (await receive())["type"])
        await asyncio.sleep(3)
        note("background work done")
        if scope["query_string"] == b"fail":
            raise ValueError("the background work failed")
    elif path == "/ignore-body":
        # Answers reading none of the body (after a moment: the daemon has
        # handed the request over by then).
        await asyncio.sleep(0.05)
        await respond(send, 200, b"ignored")
    elif path == "/active":
        # The requests the mod_wsgi module counts as running (this one, once the others ended).
        import mod_wsgi
        await respond(send, 200, b"active=%d" % len(mod_wsgi.active_requests))
    elif path == "/sleep":
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            note("cancelled")
            raise
    else:
        await respond(send, 404, b"no such path: " + path.encode())
