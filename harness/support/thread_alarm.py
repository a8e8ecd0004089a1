"""A time limit for code running in a thread other than the main one (where SIGALRM cannot reach).

A Dask worker runs tasks in a thread pool, so the verifier's per-case limit, which interrupts with
SIGALRM in the main thread, would not apply there. :func:`interrupt_after` arms a timer thread
that raises an exception *inside* the watched thread (CPython's ``PyThreadState_SetAsyncExc``).
As with the signal, the exception lands between two Python bytecodes: a long C call (one huge
NumPy operation) finishes first; a backend that loops in Python is stopped close to the limit.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from contextlib import contextmanager

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.c_void_p)  # a NULL exception withdraws one pending


@contextmanager
def interrupt_after(seconds: float, make_exception, *, postpone=None, postpone_s: float = 1.0):
    """Raise ``make_exception()`` in the calling thread once ``seconds`` have passed inside the block.

    Parameters
    ----------
    seconds : float
        The limit, from entering the block.
    make_exception : callable
        Returns the exception instance to raise; its type and arguments are what the thread sees
        (CPython raises the *type* with no arguments when given a class, so an instance's class is
        re-created with its message: see :func:`_raiser`).
    postpone : callable, optional
        Called with the watched thread's current frame when the limit passes; True postpones the
        interrupt by ``postpone_s`` (a JIT compiler at work must not be interrupted: see
        :func:`harness.verify.verifier.time_limit`).
    """
    target = threading.get_ident()
    state = {"inside": True}
    lock = threading.Lock()
    timer = None

    def expire():
        nonlocal timer
        with lock:
            if not state["inside"]:
                return
            frame = sys._current_frames().get(target)
            if postpone is not None and frame is not None and postpone(frame):
                timer = threading.Timer(postpone_s, expire)
                timer.daemon = True
                timer.start()
                return
            state["raised"] = _raiser(make_exception())  # kept alive while pending
            _set_async_exc(target, id(state["raised"]))

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    delivered = False
    try:
        yield
    except BaseException as exc:
        delivered = "raised" in state and isinstance(exc, state["raised"])
        raise
    finally:
        with lock:
            state["inside"] = False
            timer.cancel()
            if "raised" in state and not delivered:
                # fired but not delivered (the block ended first): withdraw it, so it cannot surface
                # later in unrelated code. Only then: on CPython 3.11 a withdrawal leaves the
                # interpreter's "async exception pending" flag set once the thread is gone, and every
                # thread then takes the eval loop's slow path for good (hypothesis ran 1000x slower).
                _set_async_exc(target, None)


def _raiser(exc: BaseException) -> type:
    """A subclass of ``exc``'s type whose no-argument constructor gives ``exc``'s arguments.

    ``PyThreadState_SetAsyncExc`` takes an exception type and instantiates it without
    arguments; this keeps the message (``except`` on the original type still matches).
    """
    base = type(exc)
    args = exc.args
    return type(base.__name__, (base,), {"__init__": lambda self: base.__init__(self, *args),
                                          "__module__": base.__module__, "__qualname__": base.__qualname__})
