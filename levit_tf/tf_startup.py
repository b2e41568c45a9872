"""Importing TensorFlow without its start-up chatter on the terminal.

TensorFlow's C++ start-up writes straight to file descriptor 2 before absl logging is
initialized, so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence it: on CPUs where oneDNN is on by
default (AVX-512 VNNI / AMX) every command would print "oneDNN custom operations are on ..."
before its own output. The CLIs import TensorFlow through ``import_tensorflow_quietly`` once,
after their arguments are checked; the chatter is dropped unless the import fails.
"""

from __future__ import annotations

import os
import sys
import tempfile


def import_tensorflow_quietly() -> None:
    """Imports tensorflow and keras with fd 2 captured; replays the capture only on failure."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


__all__ = ["import_tensorflow_quietly"]
