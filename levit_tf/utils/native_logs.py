"""Keeping native libraries' start-up chatter off the terminal.

TensorFlow's C++ start-up writes straight to file descriptor 2 before absl logging is
initialized, so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence it: on CPUs where oneDNN is on by
default (AVX-512 VNNI / AMX) every command would print "oneDNN custom operations are on ..."
before its own output. LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
the same way. ``quiet_native_stderr`` captures fd 2 around such a call and replays the capture
only if the call fails, so real errors still reach the user.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Captures fd 2 (native writes included) for the block; replays it if the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class Capture:
    """What a ``capture_native_stderr`` block wrote to fd 2 (``text``, set when it ends)."""

    text: str = ""


@contextlib.contextmanager
def capture_native_stderr() -> Iterator[Capture]:
    """Captures fd 2 (native writes included) for the block into ``Capture.text``, always
    (the caller parses it, e.g. LiteRT's list of ops the GPU does not take), replaying nothing."""
    with _capture_fd(2, sys.stderr) as found:
        yield found


@contextlib.contextmanager
def capture_native_stdout() -> Iterator[Capture]:
    """As ``capture_native_stderr``, for fd 1: LiteRT's GPU set-up prints "INFO: Failed to load
    OpenCL library ..." to stdout, where it would land in a command's output."""
    with _capture_fd(1, sys.stdout) as found:
        yield found


@contextlib.contextmanager
def _capture_fd(fd: int, stream) -> Iterator[Capture]:
    stream.flush()
    saved = os.dup(fd)
    found = Capture()
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), fd)
        try:
            yield found
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            capture.seek(0)
            found.text = capture.read().decode(errors="replace")


def import_tensorflow_quietly() -> None:
    """Imports tensorflow and keras without their native start-up lines (the CLIs call this
    once, after their arguments are checked).

    Unless the user set ``TF_CPP_MIN_LOG_LEVEL``, TF's C++ log is limited to fatal messages
    (3): its ERROR lines are advisories such as "oneDNN supports DT_UINT8 only on platforms
    with AVX-512. Falling back to ... Eigen" (oneDNN forced on an AVX2 CPU, as the fine-tuning
    guide suggests for training); real failures reach the user as the verb's one-line error.
    ``TF_CPP_MIN_LOG_LEVEL=0 levit-tf ...`` shows everything."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        return
    with quiet_native_stderr():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401


__all__ = ["Capture", "capture_native_stderr", "capture_native_stdout",
           "import_tensorflow_quietly", "quiet_native_stderr"]
