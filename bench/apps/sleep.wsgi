# A request that holds its daemon thread for 2 ms without using the CPU (an
# application waiting on a database): with more clients than daemon threads,
# requests queue, and the order they are served in shows in the latency tail.
import time

BODY = b"Slept 2 ms"


def application(environ, start_response):
    time.sleep(0.002)
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]
