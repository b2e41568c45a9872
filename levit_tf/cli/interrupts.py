"""Ctrl-C for the command-line tools, never lost and never a crash.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when SIGINT
arrives. Two places make that go wrong while TensorFlow starts up:

- a garbage-collector callback: Python only prints an exception raised there ("Exception
  ignored in ...") and carries on. JAX registers one, and TensorFlow imports JAX whenever it is
  installed, so an interrupt landing there was lost: the verb ran on, wrote its output and
  exited 0;
- a native module's initializer (TensorFlow's, JAX's): an exception raised inside one can
  crash the process (a segmentation fault was seen while a native module loaded during
  TensorFlow's import).

``SigintGuard`` handles SIGINT instead: inside a gc callback it raises the interrupt again
10 ms later, once the callback has returned; inside ``deferred()`` (the native imports) it
raises it when the block ends. Everywhere else it raises at once, as Python would.
"""

from __future__ import annotations

import gc
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType

REDELIVERY_DELAY_S = 0.01


def in_gc_callback(frame: FrameType | None) -> bool:
    """Whether ``frame`` or one of its callers is a function in ``gc.callbacks``."""
    codes = {getattr(callback, "__code__", None) for callback in gc.callbacks} - {None}
    while frame is not None:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


class SigintGuard:
    """Context manager: SIGINT handled as above while it is active, the previous handler
    restored after. It does nothing outside the main thread (where Python cannot set
    handlers) and where SIGINT is ignored (a background job of a non-interactive shell, nohup):
    that stays ignored."""

    def __init__(self) -> None:
        self.pending = False
        self._deferring = 0
        self._previous: object = None
        self._installed = False
        self._redelivery: threading.Timer | None = None

    def __enter__(self) -> SigintGuard:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._redelivery is not None:  # the work ended within the delay: nothing to stop
            self._redelivery.cancel()
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self._deferring:
            self.pending = True
        elif in_gc_callback(frame):
            self._redelivery = threading.Timer(REDELIVERY_DELAY_S, signal.raise_signal,
                                               (signal.SIGINT,))
            self._redelivery.daemon = True
            self._redelivery.start()
        else:
            raise KeyboardInterrupt

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """An interrupt inside the block is raised when the block ends (not before)."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        if self.pending and not self._deferring:
            self.pending = False
            raise KeyboardInterrupt


__all__ = ["SigintGuard", "in_gc_callback"]
