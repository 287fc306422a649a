# Reports the process's resource limits, priority and groups, and the stack
# size of the thread running the request (key=ascii(value) lines).
import ctypes
import os
import resource
import time

libc = ctypes.CDLL(None)
libc.pthread_self.restype = ctypes.c_ulong
libc.pthread_getattr_np.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
libc.pthread_attr_getstacksize.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
libc.pthread_attr_destroy.argtypes = [ctypes.c_void_p]


def thread_stack_size():
    attr = ctypes.create_string_buffer(256)  # larger than any pthread_attr_t
    size = ctypes.c_size_t()
    libc.pthread_getattr_np(libc.pthread_self(), attr)
    libc.pthread_attr_getstacksize(attr, ctypes.byref(size))
    libc.pthread_attr_destroy(attr)
    return size.value


def application(environ, start_response):
    if environ['PATH_INFO'] == '/burn':
        # Spend CPU time (cpu-time-limit=), then answer normally.
        start = time.process_time()
        while time.process_time() - start < 2.5:
            pass
    report = {
        'pid': os.getpid(),
        'cpu': resource.getrlimit(resource.RLIMIT_CPU),
        'data': resource.getrlimit(resource.RLIMIT_DATA),
        'as': resource.getrlimit(resource.RLIMIT_AS),
        'stack_limit': resource.getrlimit(resource.RLIMIT_STACK)[0],
        'thread_stack': thread_stack_size(),
        'priority': os.getpriority(os.PRIO_PROCESS, 0),
        'groups': sorted(os.getgroups()),
    }
    body = ''.join('%s=%s\n' % (k, ascii(v)) for k, v in report.items())
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
