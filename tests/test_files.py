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
