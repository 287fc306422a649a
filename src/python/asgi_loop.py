# The Python side of ASGI in a daemon process: one event loop per
# interpreter (application group) on a thread of its own, the task that runs
# one request, and the lifespan protocol. The request's I/O is done by the
# daemon worker that took the request (see asgi.rs): `channel` relays each
# receive() and send() to it, and it resolves the future the call awaits.
# `_log(level, text)` is set by the module (0 error, 1 warning, 2 info).

import asyncio
import inspect
import threading
import traceback

ERROR, WARNING, INFO = 0, 1, 2


def is_asgi(app):
    """As uvicorn's --interface auto: a coroutine function, or an object
    whose __call__ is one."""
    if inspect.iscoroutinefunction(app):
        return True
    if inspect.isfunction(app) or inspect.ismethod(app) or inspect.isclass(app):
        return False
    return inspect.iscoroutinefunction(getattr(app, "__call__", None))


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
_thread = threading.Thread(target=_serve_forever, args=(loop,), name="mod_wsgi-asgi", daemon=True)
_thread.start()
_lifespans = {}
_lifespans_lock = threading.Lock()


def _settle(future, value):
    if not future.done():
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)


def resolve(future, value):
    """Called by a daemon worker: completes a receive() or send()."""
    loop.call_soon_threadsafe(_settle, future, value)


async def _call(app, scope, channel):
    running = asyncio.get_running_loop()

    async def receive():
        future = running.create_future()
        channel.receive(future)
        return await future

    async def send(message):
        future = running.create_future()
        channel.send(message, future)
        await future

    try:
        await app(scope, receive, send)
    except asyncio.CancelledError:
        channel.done(None)
    except BaseException as exc:
        channel.done(exc)
    else:
        channel.done(None)


def submit(app, scope, channel):
    """Starts the request's task; returns its concurrent future (to cancel it)."""
    return asyncio.run_coroutine_threadsafe(_call(app, scope, channel), loop)


class Lifespan:
    """The lifespan protocol of one application, as uvicorn's lifespan=auto:
    an application that raises before it answers startup runs without it."""

    def __init__(self, app, name):
        self.app = app
        self.name = name
        self.state = {}
        self.supported = True
        self.failure = None
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
    lifespan). Raises RuntimeError when startup failed: the next request
    tries again, as a failing WSGI script is loaded again."""
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
        raise RuntimeError("lifespan startup did not complete within %s seconds" % timeout)
    if lifespan.failure is not None:
        with _lifespans_lock:
            if _lifespans.get(id(app)) is entry:
                del _lifespans[id(app)]
        raise RuntimeError(lifespan.failure)
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
