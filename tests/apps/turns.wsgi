# The order in which a daemon serves requests. /turns?hold takes the
# process's thread and keeps it until var/release exists (it leaves
# var/holding when it starts); /turns?NAME answers the names served so far,
# its own last.
import os
import threading
import time

VAR = os.path.join(os.path.dirname(__file__), "var")
served = []
lock = threading.Lock()


def application(environ, start_response):
    name = environ.get("QUERY_STRING", "")
    if name == "hold":
        open(os.path.join(VAR, "holding"), "w").close()
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(VAR, "release")) and time.monotonic() < deadline:
            time.sleep(0.01)
    with lock:
        served.append(name)
        body = " ".join(served).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
