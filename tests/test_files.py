"""Atomic writes: all or nothing, with ordinary permissions."""

import os
import stat

import pytest

from qdsketch.files import atomic_path


def test_success_renames_with_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a" / "out.txt") as tmp:
            tmp.write_text("new")
    finally:
        os.umask(old)
    path = tmp_path / "a" / "out.txt"
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_errors_name_the_file_asked_for_not_the_temporary(tmp_path):
    import errno

    path = tmp_path / "out.txt"
    with pytest.raises(OSError) as caught:
        with atomic_path(path) as tmp:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))  # as a full disk says it
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(path))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError) as caught:  # /proc takes no new files, even from root
        with atomic_path("/proc/qdsketch-out.txt"):
            pass
    assert caught.value.filename == "/proc/qdsketch-out.txt"


def test_a_ctrl_c_just_after_the_temporary_is_made_leaves_none(tmp_path, monkeypatch):
    """Ctrl-C lands between two steps of Python, wherever it likes: here, just after mkstemp
    made the temporary, before anything names it (the download test's Ctrl-C once found one
    left there, under a loaded machine)."""
    import qdsketch.files as files

    (tmp_path / "kept.txt").write_text("before")
    real_close = os.close

    def interrupted(fd):
        real_close(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "close", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "kept.txt") as tmp:
            tmp.write_text("after")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]
    assert (tmp_path / "kept.txt").read_text() == "before"
