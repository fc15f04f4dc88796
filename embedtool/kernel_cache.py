"""Where numba caches the compiled kernels: somewhere writable, chosen before numba is imported.

numba's own choice is ``NUMBA_CACHE_DIR`` when set, else ``__pycache__`` beside the package, else a per-user
directory under ``$HOME``; where none of them is writable (a system install run by another user, a container with a
read-only home) every ``cache=True`` kernel fails at import with "cannot cache function ...: no locator available".
``configure`` (run by ``embedtool/__init__.py``, so before any kernel module) keeps numba's choice when it works and
otherwise points ``NUMBA_CACHE_DIR`` at the first writable of: ``$XDG_CACHE_HOME/embedtool/numba`` (or
``~/.cache/embedtool/numba``), then a private directory under the system's temporary one. Where nothing is writable,
kernels compile without a cache, after a one-line note on stderr. Nothing here imports numba (``--help`` stays fast);
only the last resort does, to switch caching off.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import time
from pathlib import Path

#: The directory numba caches the package's kernels in: None for its default (``__pycache__`` beside the package
#: or ``NUMBA_CACHE_DIR``), "" when nothing is writable and kernels are not cached.
cache_dir: str | None = None

_PACKAGE = Path(__file__).resolve().parent


def _writable(path: Path) -> bool:
    """Whether files can be created in ``path`` (made if missing). Tried for real: ``os.access`` says yes to root
    even on a read-only bind mount's files, and to anyone for a directory that cannot be made."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        tempfile.TemporaryFile(dir=path).close()
        return True
    except OSError:
        return False


def _private(path: Path) -> bool:
    """Whether ``path`` is ours alone: numba loads pickled code from its cache, so a directory in a shared temporary
    directory that another user made (or can write) must not be used."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


def choose(package: Path = _PACKAGE, environ=os.environ) -> str | None:
    """The cache directory to use: None for numba's default (``NUMBA_CACHE_DIR`` as set, or the package's
    ``__pycache__``), a path, or "" for none writable."""
    given = environ.get("NUMBA_CACHE_DIR")
    if given and _writable(Path(given)):
        return None
    if _writable(package / "__pycache__"):  # numba falls back to it from an unwritable NUMBA_CACHE_DIR
        return None
    user = Path(environ.get("XDG_CACHE_HOME") or Path(environ.get("HOME") or "~").expanduser() / ".cache")
    if _writable(user / "embedtool" / "numba"):
        return str(user / "embedtool" / "numba")
    temp = Path(tempfile.gettempdir()) / f"embedtool-numba-{os.getuid()}"
    if _private(temp) and _writable(temp) and _private(temp):  # checked again once made: it may have been raced
        return str(temp)
    return ""


def configure() -> None:
    """Give numba's cache a writable home (``choose``) before numba reads its configuration."""
    global cache_dir
    cache_dir = choose()
    if cache_dir:
        os.environ["NUMBA_CACHE_DIR"] = cache_dir
        if "numba.core.config" in sys.modules:  # numba came first (the caller's import): tell it directly
            sys.modules["numba.core.config"].CACHE_DIR = cache_dir
    elif cache_dir == "":
        sys.stderr.write("embedtool: note: no writable directory for compiled kernels (the package's, "
                         "NUMBA_CACHE_DIR, ~/.cache, the temporary directory): they compile on every run\n")
        from numba.core.dispatcher import Dispatcher

        Dispatcher.enable_caching = lambda self: None  # cache=True kernels then run uncached instead of failing


#: Whether the first compile of a process is announced on stderr: the CLI sets it (unless --quiet).
announce = False
#: What a first run compiles, measured on a 2-core machine (the demo's bag of GloVe text, the most of them).
_ESTIMATE_SECONDS = 20
_watch = None


def watch_compiles() -> None:
    """Time numba's work on kernels from now on (``compile_seconds``), and announce the first compile (``announce``).

    Called by the kernel modules once numba is imported (``codegen``). The time is that spent holding (or waiting
    for) numba's compiler lock: compiles, and loads from the cache too (the first costs about 0.25 s); only a real
    compile is announced, so a warm run says nothing."""
    global _watch
    if _watch is not None:
        return
    from numba.core import event

    class Watch(event.Listener):
        """Announces the first "numba:compile" event; totals the seconds between the outermost start and end of
        "numba:compiler_lock" events (one lock for every thread, so one depth counter serves them all)."""

        depth, seconds, started, announced = 0, 0.0, 0.0, False

        def on_start(self, ev):
            if ev.kind == "numba:compile":
                if announce and not self.announced:
                    sys.stderr.write(f"compiling kernels for this CPU, once: about {_ESTIMATE_SECONDS} s "
                                     "(`embedtool compile` does it ahead of time)\n")
                    sys.stderr.flush()
                self.announced = True
                return
            if self.depth == 0:
                self.started = time.perf_counter()
            self.depth += 1

        def on_end(self, ev):
            if ev.kind == "numba:compiler_lock":
                self.depth -= 1
                if self.depth == 0:
                    self.seconds += time.perf_counter() - self.started

    _watch = Watch()
    event.register("numba:compile", _watch)
    event.register("numba:compiler_lock", _watch)


def compile_seconds() -> float:
    """Seconds spent compiling kernels in this process so far: run times subtract it, so rates are the work's."""
    return 0.0 if _watch is None else _watch.seconds
