"""Output files: one appears at its path complete or not at all, never over an input, and no temporary file
outlives its process (the error contract in the README).

On Linux the output is written to an anonymous file (``O_TMPFILE``) in the target's directory and linked in place
when complete: a process killed at any moment, ``kill -9`` included, leaves nothing behind. Where the file system
refuses ``O_TMPFILE``, a named ``.NAME.<pid>@<host>.<hex>.tmp`` beside the target is used instead; it is removed on
any error or signal the process survives long enough to see, and a later run removes those of dead processes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import socket
import stat
from pathlib import Path

from .errors import InvalidArgumentError

#: O_TMPFILE files are reopened and linked through /proc/self/fd (linkat with AT_SYMLINK_FOLLOW).
_ANONYMOUS = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")
#: What open(O_TMPFILE) fails with on a file system (or an old kernel) without it.
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL}
_HOST = socket.gethostname()
_SWEPT: set = set()  # directories this process has already cleared of dead processes' temporaries


def is_stream(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a device or a pipe (``/dev/null``, a FIFO): written straight to, never replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def refuse_aliases(outputs, inputs: dict) -> None:
    """Raise ``InvalidArgumentError`` naming both paths when an output is one of ``inputs`` (``{path: what}``: the
    weights, their vocabulary, the input files): the same resolved path or the same file (device and inode, so a
    hard link too). Run before any work. A device or a pipe is no file an output could destroy: never refused."""
    known = {}
    for path, what in inputs.items():
        if path is None or str(path) == "-":
            continue
        described = f"{what} {path}"
        known[_resolved(path)] = described
        with contextlib.suppress(OSError):
            st = os.stat(path)
            known[(st.st_dev, st.st_ino)] = described
    for output in outputs:
        if str(output) == "-" or is_stream(output):
            continue
        keys = [_resolved(output)]
        with contextlib.suppress(OSError):
            st = os.stat(output)
            keys.append((st.st_dev, st.st_ino))
        for key in keys:
            if key in known:
                raise InvalidArgumentError(f"{output}: the output would overwrite the {known[key]}; "
                                           "name another output")


def _resolved(path) -> str:
    return os.path.realpath(os.path.abspath(path))


def check_target(target: str | os.PathLike) -> None:
    """Fail now, with an OSError naming ``target``, if it cannot be replaced at the end of the work: a directory, a
    missing directory, a directory we may not write, or another user's file in a sticky directory (``/tmp``).
    A device or a pipe is written straight to: nothing to check."""
    target = Path(target)
    if is_stream(target):
        return
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory; name an output file", str(target))
    parent = target.parent
    try:
        directory = os.stat(parent)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"no such directory {str(parent)!r}", str(target)) from None
    if not stat.S_ISDIR(directory.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, f"{str(parent)!r} is not a directory", str(target))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"cannot write in the directory {str(parent)!r}", str(target))
    try:
        owner = os.lstat(target).st_uid
    except FileNotFoundError:
        return
    me = os.geteuid()
    if directory.st_mode & stat.S_ISVTX and me not in (0, directory.st_uid, owner):
        raise PermissionError(errno.EPERM, "cannot replace another user's file in a sticky directory",
                              str(target))


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a path to write the output to; it appears at ``target`` only if the block succeeds.

    On any exception, KeyboardInterrupt and SystemExit (signals, see ``cli.app.main``) included, nothing is left and
    an existing ``target`` is untouched. A target that cannot be written fails here, before any work, with an OSError
    that names the target (``check_target``). A device or a pipe (``-o /dev/null``) is yielded itself.
    The yielded path may be ``/proc/self/fd/N``: open it (or hand it to a writer) in this process only.
    """
    target = Path(target)
    if is_stream(target):
        yield target
        return
    check_target(target)
    _sweep(target.parent)
    directory = os.open(target.parent, getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY)
    try:
        fd = _anonymous(directory, target)
        if fd is None:
            with _named_temporary(directory, target) as tmp:
                yield tmp
            return
        try:
            with _naming(target, f"/proc/self/fd/{fd}"):
                yield Path(f"/proc/self/fd/{fd}")
            _link(fd, directory, target)
        finally:
            os.close(fd)
    finally:
        os.close(directory)


def _anonymous(directory: int, target: Path) -> int | None:
    """An unnamed file in ``directory`` (0666 less the umask, as the target would be), or None without O_TMPFILE."""
    if not _ANONYMOUS:
        return None
    try:
        return os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o666, dir_fd=directory)
    except OSError as e:
        if e.errno in _NO_TMPFILE:
            return None
        raise type(e)(e.errno, e.strerror, str(target)) from None


def _link(fd: int, directory: int, target: Path) -> None:
    """Give the unnamed file ``fd`` the name ``target``, replacing an existing file atomically."""
    source = f"/proc/self/fd/{fd}"
    with _naming(target, source):
        try:
            # With a dir fd, os.link is linkat(AT_SYMLINK_FOLLOW), which follows the /proc link to the file;
            # without one, Python < 3.13 calls link(2), which fails on it (EXDEV).
            os.link(source, target.name, dst_dir_fd=directory)
            return
        except FileExistsError:
            pass
        temp = _temp_name(target)
        os.link(source, temp, dst_dir_fd=directory)
        try:
            os.replace(temp, target.name, src_dir_fd=directory, dst_dir_fd=directory)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=directory)
            raise


@contextlib.contextmanager
def _named_temporary(directory: int, target: Path):
    """The fallback without O_TMPFILE: a named temporary beside the target, renamed onto it at the end."""
    name = _temp_name(target)
    # O_EXCL, so an existing file is never taken over; 0666 less the umask (mkstemp's 0600 would survive the rename)
    try:
        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666, dir_fd=directory))
    except OSError as e:
        raise type(e)(e.errno, e.strerror, str(target)) from None
    tmp = target.with_name(name)
    try:
        with _naming(target, str(tmp)):
            yield tmp
            os.replace(name, target.name, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=directory)
        raise


def _temp_name(target: Path) -> str:
    """``.NAME.<pid>@<host>.<hex>.tmp``: the pid and host let a later run tell a dead process's leftover."""
    return f".{target.name}.{os.getpid()}@{_HOST}.{secrets.token_hex(8)}.tmp"


def _sweep(directory: Path) -> None:
    """Remove the temporaries that processes of this host, now dead, left in ``directory`` (once per process)."""
    key = _resolved(directory)
    if key in _SWEPT:
        return
    _SWEPT.add(key)
    pattern = re.compile(rf"\..+\.(\d+)@{re.escape(_HOST)}\.[0-9a-f]{{16}}\.tmp")
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            match = pattern.fullmatch(entry.name)
            if match and not _alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def _naming(target: Path, temporary: str):
    """An OSError from the block names ``target``, not the ``temporary`` it was writing."""
    try:
        yield
    except OSError as e:
        if e.filename is not None and str(e.filename) in (temporary, Path(temporary).name):
            e.filename = str(target)
        e.args = tuple(a.replace(temporary, str(target)) if isinstance(a, str) else a for a in e.args)
        raise
