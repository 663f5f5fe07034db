"""Free loopback ports.

By default the kernel picks an ephemeral port. ``ATR_TEST_PORTS=LOW-HIGH`` restricts the
harness to a range (useful when several people share a machine).
"""
import os
import socket

_next = None


def _bindable(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('127.0.0.1', port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A loopback TCP port nobody listens on right now."""
    global _next
    rng = os.environ.get('ATR_TEST_PORTS')
    if rng:
        low, high = (int(x) for x in rng.split('-'))
        if _next is None:
            _next = low
        for _ in range(high - low + 1):
            port = _next
            _next = low if _next >= high else _next + 1
            if _bindable(port):
                return port
        raise RuntimeError('no free port in ATR_TEST_PORTS=%s' % rng)
    s = socket.socket()
    try:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
    finally:
        s.close()
