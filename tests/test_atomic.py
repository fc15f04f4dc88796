"""Output files (atomic.py): one appears complete or not at all, a failed write names the target, stale temporaries
of dead processes are swept, and a file the kernel would not let us replace is refused before the work. The CLI's
side of the same contract: test_cli_output_safety.py."""

import errno
import os
import subprocess
from pathlib import Path

import pytest

from embedtool import atomic
from helpers import tmpfile_supported


@pytest.mark.parametrize("anonymous", [True, False], ids=["O_TMPFILE", "named"])
def test_output_appears_only_when_complete(tmp_path, monkeypatch, anonymous):
    if anonymous and not tmpfile_supported(tmp_path):
        pytest.skip("this file system has no O_TMPFILE")
    monkeypatch.setattr(atomic, "_ANONYMOUS", anonymous)
    target = tmp_path / "o.arrow"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as path:
            Path(path).write_bytes(b"half")
            raise RuntimeError
    assert os.listdir(tmp_path) == ["o.arrow"] and target.read_bytes() == b"old"
    with atomic.atomic_path(target) as path:
        with open(path, "wb") as f:
            f.write(b"new")
        assert target.read_bytes() == b"old"
        assert len(os.listdir(tmp_path)) == (1 if anonymous else 2)  # the named fallback shows its temporary
    assert os.listdir(tmp_path) == ["o.arrow"] and target.read_bytes() == b"new"
    with atomic.atomic_path(tmp_path / "fresh.arrow") as path:
        Path(path).write_bytes(b"x")
    assert sorted(os.listdir(tmp_path)) == ["fresh.arrow", "o.arrow"]


@pytest.mark.parametrize("anonymous", [True, False], ids=["O_TMPFILE", "named"])
def test_a_write_error_names_the_target_not_the_temporary(tmp_path, monkeypatch, anonymous):
    if anonymous and not tmpfile_supported(tmp_path):
        pytest.skip("this file system has no O_TMPFILE")
    monkeypatch.setattr(atomic, "_ANONYMOUS", anonymous)
    with pytest.raises(OSError) as caught:
        with atomic.atomic_path(tmp_path / "o.arrow") as path:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
    assert caught.value.filename == str(tmp_path / "o.arrow")
    assert os.listdir(tmp_path) == []


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path, monkeypatch):
    """Without O_TMPFILE a killed run leaves its named temporary; the next write in that directory removes it,
    and only it: not a live process's, nor another host's, nor a file that merely looks alike."""
    monkeypatch.setattr(atomic, "_ANONYMOUS", False)
    monkeypatch.setattr(atomic, "_SWEPT", set())
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = atomic._HOST
    names = {
        "dead": f".o.arrow.{dead.pid}@{host}.0123456789abcdef.tmp",
        "alive": f".o.arrow.{os.getppid()}@{host}.0123456789abcdef.tmp",
        "other host": f".o.arrow.{dead.pid}@not-{host}.0123456789abcdef.tmp",
        "look-alike": ".o.arrow.tmp",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"partial")
    with atomic.atomic_path(tmp_path / "p.arrow") as path:
        Path(path).write_bytes(b"x")
    assert sorted(os.listdir(tmp_path)) == sorted([*(n for k, n in names.items() if k != "dead"), "p.arrow"])


def test_another_users_file_in_a_sticky_directory_fails_before_the_work(tmp_path, monkeypatch):
    """The check follows the kernel's rule: in a sticky directory only the file's or the directory's owner (or
    root) may replace a file. Played here as another user by the effective uid the check sees."""
    sticky = tmp_path / "shared"
    sticky.mkdir()
    sticky.chmod(0o1777)
    (sticky / "o.arrow").write_bytes(b"theirs")
    monkeypatch.setattr(os, "geteuid", lambda: 54321)
    with pytest.raises(PermissionError) as caught:
        with atomic.atomic_path(sticky / "o.arrow"):
            pytest.fail("the work ran")
    assert caught.value.filename == str(sticky / "o.arrow")
    assert "sticky directory" in caught.value.strerror
    assert os.listdir(sticky) == ["o.arrow"]
