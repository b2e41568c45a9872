"""Publishing output files: atomic (temporary file, then rename) and readable by others.

``tempfile.mkstemp`` / ``mkdtemp`` create owner-only entries (0600 / 0700) whatever the umask;
a published file gets the mode a plain ``open(path, "w")`` / ``mkdir`` would give instead
(0644 / 0755 under umask 022), so TF Serving or a container running as another user can read
it. Every writer of a published file or folder goes through this module.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def publish_mode(path: str | os.PathLike) -> None:
    """Gives ``path`` the mode a normal create would: 0o666 (files) or 0o777 (folders, and
    every folder / file inside) minus the umask."""
    mask = current_umask()
    path = Path(path)
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            os.chmod(root, 0o777 & ~mask)
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o777 & ~mask)
            for name in files:
                os.chmod(os.path.join(root, name), 0o666 & ~mask)
    else:
        os.chmod(path, 0o666 & ~mask)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yields a temporary file name beside ``path``; on success it is published there (mode as
    a normal write gives, then an atomic rename). On any error (or KeyboardInterrupt) the
    temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", suffix=suffix or ".tmp",
                                         dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        publish_mode(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@contextlib.contextmanager
def atomic_folder(directory: str | os.PathLike) -> Iterator[Path]:
    """Yields a new empty folder beside ``directory`` (whose parent must exist); on success it is
    published as ``directory`` (modes as a normal write gives, then a rename onto the new or
    empty ``directory``). On any error the staging folder is removed and ``directory`` is
    untouched; FileExistsError when another writer published ``directory`` first."""
    directory = Path(directory)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        yield staging
        publish_mode(staging)
        try:
            if directory.exists():
                directory.rmdir()
            staging.rename(directory)
        except OSError as err:
            if err.errno in (errno.ENOTEMPTY, errno.EEXIST) or directory.is_file():
                raise FileExistsError(f"{directory}: another writer published it first; "
                                      "this export was discarded") from None
            raise
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically with the normal (umask) mode."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def check_writable_file(path: str | os.PathLike, what: str = "output") -> Path:
    """Raises ValueError (one line, naming ``path``) unless a file can be created at ``path``:
    its folder exists and is writable and ``path`` is not a folder. Tries a real temporary file,
    so read-only file systems and ACLs are caught too (``os.access`` misses them, e.g. as root).
    Call it before long work."""
    path = Path(path)
    parent = path.parent
    if path.is_dir():
        raise ValueError(f"{what} {path} is a directory, expected a file name")
    if not parent.exists():
        raise ValueError(f"{what} {path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise ValueError(f"{what} {path}: {parent} is not a directory")
    check_writable_dir(parent, what, path)
    return path


def check_writable_dir(directory: str | os.PathLike, what: str = "output",
                       shown: str | os.PathLike | None = None) -> None:
    """Raises ValueError unless a file can be created inside the existing ``directory``."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".levit-tf-probe-", dir=directory)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ValueError(f"{what} {shown or directory}: cannot write in {directory} "
                         f"({reason})") from None
    os.close(handle)
    os.unlink(probe)
