"""Writing files so that a failure never leaves half of one behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception (Ctrl-C included) the temporary file is removed and
    ``path`` keeps whatever it held before. The temporary name ends in
    ``.part``, so writers that pick a format by suffix must be told the format.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextmanager
def folder_lock(folder: Path, what: str = "qdsketch train") -> Iterator[None]:
    """One process at a time in ``folder``: ``folder/.lock`` holds the owner's pid while
    the block runs. A lock whose process is gone is taken over; a live one is an error."""
    from qdsketch.errors import QdsketchError

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / ".lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            pid = _pid_in(lock)
            if pid is not None and _alive(pid):
                raise QdsketchError(
                    f"{folder} is in use by another {what} (pid {pid})", "wait for it to end, or use another folder"
                ) from None
            lock.unlink(missing_ok=True)  # its process is gone
    else:
        raise QdsketchError(f"could not lock {folder}", f"remove {lock} if no {what} is running")
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _pid_in(lock: Path) -> int | None:
    try:
        return int(lock.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process
        return True
    return True
