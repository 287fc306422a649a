# The ASGI rows: a Starlette hello world and a 1 MiB response, served by our
# daemon (mounted at /asgi) and by uvicorn (serving the whole URL), so each
# route answers with and without the mount point.
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

HELLO = b"Hello World!"
MIB = b"x" * (1 << 20)


async def hello(request):
    return Response(HELLO, media_type="text/plain")


async def mib(request):
    return Response(MIB, media_type="application/octet-stream")


application = Starlette(routes=[
    Route("/hello", hello), Route("/asgi/hello", hello),
    Route("/1mib", mib), Route("/asgi/1mib", mib),
])
