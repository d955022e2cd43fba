"""Writing files so that a failure never leaves half of one behind."""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time
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
    sweep_parts(path)
    prefix = part_prefix(path)
    tmp: Path | None = None
    try:
        try:
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".part")
        except OSError as exc:  # a message names the file the user asked for, not our temporary
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        os.close(fd)
        tmp = Path(name)
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is None or exc.filename not in (str(tmp), tmp):
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        # a Ctrl-C can come between two steps above, before ``tmp`` names the file mkstemp
        # made: every temporary of this process for ``path`` goes (their names hold our pid)
        for left in path.parent.glob(glob.escape(prefix) + "*.part"):
            left.unlink(missing_ok=True)
        raise
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def write_atomically(path: str | os.PathLike, data: bytes | memoryview) -> None:
    """``data`` at ``path``, whole or not at all (``atomic_path``). What libraries serialise
    (torch, imageio) is made in memory and written here, so a full disk is one ``OSError``
    with its errno, whatever the library would have raised or retried."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


OLD_PART_AGE = 24 * 3600  # seconds: a temporary of a version that did not record its writer


def part_prefix(path: Path) -> str:
    """How every temporary beside ``path`` begins: ``.NAME.PID-``, so that a later
    run can tell the temporaries of a killed writer from those of a live one."""
    return f".{path.name}.{os.getpid()}-"


def sweep_parts(path: Path) -> list[Path]:
    """Remove the temporaries (files or folders) that writers of ``path`` left
    when they were killed: those whose writer's process is gone, and those of
    an older qdsketch that named no writer, once a day old. Returns what went."""
    gone = []
    for part in Path(path).parent.glob(f".{glob.escape(Path(path).name)}.*.part"):
        middle = part.name[len(Path(path).name) + 2 : -len(".part")]
        if "." in middle:  # another file's: .NAME.meta.json.PID-x.part
            continue
        pid_text, dash, _ = middle.partition("-")
        try:
            if dash and pid_text.isdigit():
                stale = not _alive(int(pid_text))
            else:
                stale = time.time() - part.lstat().st_mtime > OLD_PART_AGE
            if stale:
                shutil.rmtree(part) if part.is_dir() and not part.is_symlink() else part.unlink()
                gone.append(part)
        except OSError:  # raced with another sweeper, or not ours to remove: leave it
            continue
    return gone


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def temp_dir(beside: Path, suffix: str = ".part") -> Path:
    """A new hidden directory next to ``beside``, named so that ``sweep_parts(beside)``
    finds it, with the permissions ``mkdir`` would give (``mkdtemp`` gives 0700)."""
    work = Path(tempfile.mkdtemp(dir=beside.parent, prefix=part_prefix(beside), suffix=suffix))
    os.chmod(work, 0o777 & ~_umask())
    return work


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


def lock_owner(folder: Path) -> int | None:
    """The pid of the live process that holds ``folder_lock(folder)``, if one does."""
    pid = _pid_in(Path(folder) / ".lock")
    return pid if pid is not None and _alive(pid) else None


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
