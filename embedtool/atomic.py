"""Atomic output: a file appears at its path complete, or not at all."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds.

    On any exception, KeyboardInterrupt included, the temporary file is removed and an existing ``target`` is left
    untouched. A target that cannot be written (a directory, in a missing directory, not permitted) fails here,
    before any work, with an OSError that names the target, not the temporary file.
    """
    target = Path(target)
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory; name an output file", str(target))
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    # Created as the target would be, 0666 less the umask (mkstemp's 0600 would survive the rename, and other users
    # of a shared filesystem could not read the output); O_EXCL, so an existing file is never taken over.
    try:
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"no such directory {str(target.parent)!r}", str(target)) from None
    except OSError as e:
        raise type(e)(e.errno, e.strerror, str(target)) from None
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise

