"""Start-up of small jobs: where the compiled kernels are cached (any install, no traceback), small calls that never
import numba, and the one-line compile notice. The NumPy path itself: test_small.py; ``embedtool compile``:
test_cli_compile.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from embedtool import kernel_cache, small

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"


def _unwritable_install(tmp_path: Path) -> tuple[Path, dict]:
    """A copy of the package where nothing numba would pick is writable, and the environment to run it in.

    Tests run as root, where a read-only mode does not stop writes: the package's ``__pycache__`` and ``$HOME`` are
    plain files instead, which no one can create a directory in. ``$TMPDIR`` is the only writable place left."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "embedtool", site / "embedtool", ignore=shutil.ignore_patterns("__pycache__"))
    (site / "embedtool" / "__pycache__").write_text("not a directory")
    home = tmp_path / "home"
    home.write_text("not a directory")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(HOME=str(home), TMPDIR=str(temp), PYTHONPATH=str(site))
    return site, env


_EMBED = f"""
import sys
from embedtool import small
small.SMALL_WORK = 0  # the kernels, whose cache is under test
sys.argv = ["embedtool", "embed", {str(SAMPLE / "weights.npy")!r}, {str(SAMPLE / "ids.npy")!r}, "-o", "out.arrow", "-q"]
from embedtool_cli.app import main
main()
"""


def _embedded(tmp_path: Path) -> bool:
    """Whether the run wrote what the kernels and the NumPy path both give."""
    import pyarrow as pa

    weight, ids = np.load(SAMPLE / "weights.npy"), np.load(SAMPLE / "ids.npy")
    column = pa.ipc.open_file(tmp_path / "out.arrow").read_all().column("embedding").combine_chunks()
    return np.array_equal(column.to_numpy_ndarray(), weight[ids])


def test_kernels_cache_in_a_private_temporary_directory_when_package_and_home_are_unwritable(tmp_path):
    site, env = _unwritable_install(tmp_path)
    run = subprocess.run([sys.executable, "-c", _EMBED], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    assert run.stderr == "" and _embedded(tmp_path)
    assert list((tmp_path / "tmp" / f"embedtool-numba-{os.getuid()}").glob("**/gather._gather-*.nbi"))


def test_kernels_run_uncached_with_a_one_line_note_when_nothing_is_writable(tmp_path):
    site, env = _unwritable_install(tmp_path)
    env["TMPDIR"] = env["HOME"]  # a file: tempfile then falls back to /tmp, which this script takes away too
    script = f"import tempfile; tempfile.tempdir = {env['HOME']!r}\n" + _EMBED
    run = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    assert _embedded(tmp_path)
    assert run.stderr.count("\n") == 1 and "compile on every run" in run.stderr, run.stderr


def test_cache_choice_keeps_numba_default_where_the_package_is_writable(tmp_path):
    assert kernel_cache.choose(tmp_path / "pkg", {"HOME": str(tmp_path)}) is None


def test_cache_choice_keeps_a_writable_numba_cache_dir(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__pycache__").write_text("")
    assert kernel_cache.choose(tmp_path / "pkg", {"NUMBA_CACHE_DIR": str(tmp_path / "c")}) is None


def test_cache_choice_falls_back_to_the_user_cache_then_a_temporary_directory_then_none(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__pycache__").write_text("")  # a file: the package's cache cannot be made
    blocked = tmp_path / "file"
    blocked.write_text("")
    environ = {"NUMBA_CACHE_DIR": str(blocked), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert kernel_cache.choose(tmp_path / "pkg", environ) == str(tmp_path / "xdg" / "embedtool" / "numba")
    environ = {"HOME": str(blocked)}
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert kernel_cache.choose(tmp_path / "pkg", environ) == str(tmp_path / f"embedtool-numba-{os.getuid()}")
    monkeypatch.setattr(tempfile, "tempdir", str(blocked))
    assert kernel_cache.choose(tmp_path / "pkg", environ) == ""


def test_cache_choice_refuses_a_temporary_directory_others_can_write(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__pycache__").write_text("")
    shared = tmp_path / f"embedtool-numba-{os.getuid()}"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # another user could plant pickled code here
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert kernel_cache.choose(tmp_path / "pkg", {"HOME": str(tmp_path / "pkg" / "__pycache__")}) == ""


def _cli(args: list[str], env: dict | None = None, code: str = "") -> subprocess.CompletedProcess:
    """The CLI in a process of its own (``code`` runs first), printing whether it imported numba at exit."""
    script = (f"{code}\nimport atexit, sys\n"
              "atexit.register(lambda: print('numba loaded' if sys.modules.get('numba') else 'no numba',\n"
              "                              file=sys.stderr))\n"
              f"sys.argv = ['embedtool', *{args!r}]\nfrom embedtool_cli.app import main\nmain()\n")
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("args", [
    ["embed", str(SAMPLE / "weights.npy"), str(SAMPLE / "ids.npy")],
    ["embed", str(SAMPLE / "weights.npy"), str(SAMPLE / "ids.txt"), "--padding-idx", "0", "--output-dtype", "float16"],
    ["bag", str(SAMPLE / "weights.npy"), str(SAMPLE / "ids.npy"), "--mode", "max"],
    ["bag", str(SAMPLE / "weights.npy"), str(SAMPLE / "ids.txt"), "--mode", "sum"],
])
def test_small_jobs_on_ids_never_import_numba_and_match_the_kernels(tmp_path, args):
    small_run = _cli([*args, "-o", str(tmp_path / "small.arrow"), "-q"])
    assert small_run.returncode == 0, small_run.stderr
    assert small_run.stderr == "no numba\n"
    kernel_run = _cli([*args, "-o", str(tmp_path / "kernels.arrow"), "-q"],
                      code="from embedtool import small; small.SMALL_WORK = 0")
    assert kernel_run.returncode == 0 and kernel_run.stderr.endswith("numba loaded\n"), kernel_run.stderr
    import pyarrow as pa

    tables = [pa.ipc.open_file(tmp_path / f"{name}.arrow").read_all() for name in ("small", "kernels")]
    assert tables[0].equals(tables[1])


#: Run first in a process: numba cannot be imported (an ``import numba`` raises ImportError).
_NO_NUMBA = "import sys; sys.modules['numba'] = None"
#: Run first in a process: every small-input path turned off, so each call takes the kernels.
_KERNELS = ("from embedtool import small; small.SMALL_WORK = small.SMALL_TEXT = small.SMALL_VOCAB = -1; "
            "from embedtool.vectors import Vectors; Vectors.FEW_TOKENS = -1")


@pytest.fixture(scope="module")
def glove_arrow(tmp_path_factory) -> Path:
    """The sample GloVe text converted to an Arrow store, as the benchmark's ``lookup`` and ``info`` read it."""
    path = tmp_path_factory.mktemp("store") / "glove.arrow"
    run = _cli(["convert", str(SAMPLE / "glove.txt"), str(path)])
    assert run.returncode == 0, run.stderr
    return path


# The small calls of benchmarks/bench_startup.py (``{store}``: the converted GloVe store, ``{out}``: the output),
# and whether the kernels path loads numba (``info`` without --stats reads no row: there is no kernel to compare).
@pytest.mark.parametrize(("args", "kernels"), [
    (["embed", str(SAMPLE / "weights.npy"), str(SAMPLE / "ids.npy"), "-o", "{out}", "-q"], True),
    (["bag", str(SAMPLE / "weights.npy"), str(SAMPLE / "ids.npy"), "-o", "{out}", "-q", "--mode", "mean"], True),
    (["bag", str(SAMPLE / "glove.txt"), str(SAMPLE / "tokens.txt"), "-o", "{out}", "-q", "--mode", "mean", "--oov",
      "skip"], True),
    (["lookup", "{store}", "the", "of"], True),
    (["info", "{store}"], False),
    (["info", "{store}", "--stats", "--json"], True),
    (["convert", str(SAMPLE / "glove.txt"), "{out}"], True),
], ids=lambda a: " ".join(Path(x).name for x in a) if isinstance(a, list) else None)
def test_small_calls_of_the_startup_benchmark_run_without_numba_as_the_kernels_do(tmp_path, glove_arrow, args,
                                                                                  kernels):
    def run(name: str, code: str) -> subprocess.CompletedProcess:
        out = tmp_path / f"{name}.arrow"
        done = _cli([a.format(store=glove_arrow, out=out) for a in args], code=code)
        assert done.returncode == 0, done.stderr
        return done

    unimportable = run("small", _NO_NUMBA)
    assert unimportable.stderr.endswith("no numba\n"), unimportable.stderr
    on_kernels = run("kernels", _KERNELS)
    assert on_kernels.stderr.endswith("numba loaded\n" if kernels else "no numba\n"), on_kernels.stderr
    if "{out}" in args:
        import pyarrow as pa

        tables = [pa.ipc.open_file(tmp_path / f"{name}.arrow").read_all() for name in ("small", "kernels")]
        assert tables[0].equals(tables[1])
    else:
        assert unimportable.stdout == on_kernels.stdout and unimportable.stdout


def test_help_imports_no_numba():
    run = _cli(["--help"])
    assert run.returncode == 0 and run.stderr == "no numba\n", run.stderr


def test_a_first_compile_is_announced_once_and_not_counted_as_work(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    force = "from embedtool import small; small.SMALL_WORK = 0"
    args = ["embed", str(SAMPLE / "weights.npy"), str(SAMPLE / "ids.npy"), "-o", str(tmp_path / "o.arrow")]
    silent = _cli(args, env, force)  # stderr is not a terminal: no notice, as no progress bar
    assert silent.returncode == 0 and "compiling" not in silent.stderr, silent.stderr
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "cold")
    first = _cli([*args, "--progress"], env, force)
    assert first.returncode == 0, first.stderr
    assert "compiling kernels for this CPU, once: about " in first.stderr
    assert first.stderr.count("compiling kernels") == 1
    seconds = float(first.stderr.split(" lookups in ")[1].split(" s")[0])
    assert seconds < 0.5  # the compile took seconds; the work, milliseconds
    again = _cli([*args, "--progress"], env, force)
    assert "compiling" not in again.stderr
    quiet = _cli([*args, "-q"], {**env, "NUMBA_CACHE_DIR": str(tmp_path / "other")}, force)
    assert quiet.returncode == 0 and quiet.stderr == "numba loaded\n"
