# The Python side of ASGI in a daemon process: one event loop per
# interpreter (application group) on a thread of its own, the task that runs
# one request, and the lifespan protocol. A request's I/O is done by the
# daemon's relay threads (see request.rs): `channel` hands them each
# receive() and send(), and for those that must wait gives a key, under which
# the task's future is kept here until `resolve(key, value)` completes it.
# `_log(level, text)` is set by the module (0 error, 1 warning, 2 info), and
# `_inbox`, the queue of requests whose tasks the loop starts itself (a
# request for an application already running here comes that way; see
# inbox.rs).

import asyncio
import contextvars
import threading
import traceback

ERROR, WARNING, INFO = 0, 1, 2


def _log_exception(level, what, exc):
    _log(level, what)
    for chunk in traceback.format_exception(type(exc), exc, exc.__traceback__):
        for line in chunk.splitlines():
            _log(level, line)


def _new_loop():
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _serve_forever(loop):
    asyncio.set_event_loop(loop)
    loop.run_forever()


loop = _new_loop()


def _arrived():
    for app, scope, channel, request, data in _inbox.take():
        _start(app, scope, channel, request, data)


loop.add_reader(_inbox.fileno(), _arrived)
_thread = threading.Thread(target=_serve_forever, args=(loop,), name="mod_wsgi-asgi", daemon=True)
_thread.start()
_lifespans = {}
_lifespans_lock = threading.Lock()


# The futures receive() and send() await, by key (used on the loop thread only).
_futures = {}
# The running requests' tasks, by request key (to cancel them, and to keep
# them: the loop holds tasks only weakly). Used on the loop thread only.
_tasks = {}
# What mod_wsgi.request_data() gives in a request's task (each task runs in
# a context of its own).
request_data = contextvars.ContextVar("mod_wsgi.request_data")


def _settle(key, value):
    future = _futures.pop(key, None)
    if future is not None and not future.done():
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)


def resolve(key, value):
    """Called by a relay thread: completes the receive() or send() waiting under `key`."""
    loop.call_soon_threadsafe(_settle, key, value)


async def _call(app, scope, channel, request, data):
    running = asyncio.get_running_loop()
    mine = []
    request_data.set(data)

    async def receive():
        key = channel.receive()
        if key is None:
            # The exchange is over (the response complete, or the client gone).
            return {"type": "http.disconnect"}
        future = _futures[key] = running.create_future()
        mine.append(key)
        return await future

    async def send(message):
        key = channel.send(message)
        if key is not None:
            future = _futures[key] = running.create_future()
            mine.append(key)
            await future

    try:
        await app(scope, receive, send)
    except asyncio.CancelledError:
        channel.done(None)
    except BaseException as exc:
        channel.done(exc)
    else:
        channel.done(None)
    finally:
        _tasks.pop(request, None)
        for key in mine:
            _futures.pop(key, None)


def _start(app, scope, channel, request, data):
    _tasks[request] = loop.create_task(_call(app, scope, channel, request, data))


def _cancel(request):
    task = _tasks.get(request)
    if task is not None:
        task.cancel()


def cancel(request):
    """Called by a relay thread at request-timeout=."""
    loop.call_soon_threadsafe(_cancel, request)


class Lifespan:
    """The lifespan protocol of one application, as uvicorn's lifespan=auto:
    an application that raises before it answers startup runs without it."""

    def __init__(self, app, name):
        self.app = app
        self.name = name
        self.state = {}
        self.supported = True
        self.failure = None
        # The failure has been raised once (and so logged in full).
        self.reported = False
        self.answered = False

    async def startup(self):
        self.queue = asyncio.Queue()
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._main())
        await self.queue.put({"type": "lifespan.startup"})
        await self.started.wait()

    async def _main(self):
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        try:
            await self.app(scope, self.queue.get, self._send)
        except BaseException as exc:
            if not self.answered:
                self.supported = False
                _log(INFO, "mod_wsgi: ASGI 'lifespan' protocol appears unsupported by '%s' (%s: %s), running without it." % (self.name, type(exc).__name__, exc))
            else:
                _log_exception(ERROR, "mod_wsgi: Exception in ASGI lifespan of '%s'." % self.name, exc)
        finally:
            self.started.set()
            self.stopped.set()

    async def _send(self, message):
        kind = message["type"]
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            self.answered = True
            if kind.endswith("failed"):
                self.failure = message.get("message", "") or "startup failed"
            self.started.set()
        elif kind == "lifespan.shutdown.complete":
            self.stopped.set()
        elif kind == "lifespan.shutdown.failed":
            _log(ERROR, "mod_wsgi: ASGI lifespan shutdown of '%s' failed: %s" % (self.name, message.get("message", "")))
            self.stopped.set()

    async def shutdown(self):
        if self.supported and self.failure is None and not self.task.done():
            await self.queue.put({"type": "lifespan.shutdown"})
            await self.stopped.wait()


def app_state(app, name, timeout):
    """Runs the application's lifespan startup once, before its first
    request; returns the state to copy into request scopes (None without
    lifespan). Raises RuntimeError(message, first) when startup failed
    (`first` the first time; the process is then replaced by a fresh one,
    which tries again, this one does not), RuntimeError(message) when it
    has not completed within `timeout` seconds."""
    entry = _lifespans.get(id(app))
    if entry is not None and entry[0] is app and entry[2].done() and entry[1].failure is None:
        # Started already: every request after the first.
        return entry[1].state if entry[1].supported else None
    with _lifespans_lock:
        entry = _lifespans.get(id(app))
        if entry is None or entry[0] is not app:
            lifespan = Lifespan(app, name)
            entry = (app, lifespan, asyncio.run_coroutine_threadsafe(lifespan.startup(), loop))
            _lifespans[id(app)] = entry
    _, lifespan, started = entry
    try:
        started.result(timeout)
    except TimeoutError:
        # Not a failure: a slow startup (a model to load) may yet complete.
        raise RuntimeError("lifespan startup did not complete within %s seconds" % timeout)
    if lifespan.failure is not None:
        with _lifespans_lock:
            first = not lifespan.reported
            lifespan.reported = True
        raise RuntimeError(lifespan.failure, first)
    return lifespan.state if lifespan.supported else None


def stop(timeout):
    """Runs every application's lifespan shutdown (within `timeout`
    seconds in all), then stops the loop."""
    with _lifespans_lock:
        lifespans = [lifespan for _, lifespan, started in _lifespans.values() if started.done()]
        _lifespans.clear()

    async def shut_down_all():
        await asyncio.gather(*(lifespan.shutdown() for lifespan in lifespans))

    if lifespans:
        try:
            asyncio.run_coroutine_threadsafe(asyncio.wait_for(shut_down_all(), timeout), loop).result(timeout + 1)
        except (TimeoutError, asyncio.TimeoutError):
            _log(WARNING, "mod_wsgi: ASGI lifespan shutdown did not complete within %s seconds." % timeout)
        except BaseException as exc:
            _log_exception(ERROR, "mod_wsgi: Exception in ASGI lifespan shutdown.", exc)
    loop.call_soon_threadsafe(loop.stop)
    _thread.join(timeout)
