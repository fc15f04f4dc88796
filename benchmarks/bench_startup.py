"""Start-up of small shell calls: whole-process times of embedtool commands on sample_data, cold and warm.

Each call runs as a new process (median of --repeat runs, round-robin over the calls, as these machines are shared
and noisy), twice over: **cold**, with an empty numba cache (a fresh ``NUMBA_CACHE_DIR`` per run: what a new user's
first call costs), and **warm**, with a cache the call has filled before. Times are printed in seconds and as ratios
to ``python -c "import numpy, pyarrow, pyarrow.ipc"`` (the floor any Arrow tool pays), run in the same rounds; and
``--help`` against a bare Typer app of one command.

Targets (issue 21): warm within 2x the baseline, cold within 2x its own warm, ``--help`` within 1.3x the bare Typer
app, without importing numba (checked here: ``numba`` column).

The package's bytecode is compiled first (an installed package has it; this checkout's may not, and Python would
then compile every module on every run).

    python benchmarks/bench_startup.py              # median of 9
    python benchmarks/bench_startup.py --repeat 3   # a quick look
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
PYTHON = sys.executable
EMBEDTOOL = [PYTHON, "-c", "import sys; from embedtool_cli.app import main; sys.argv[0] = 'embedtool'; main()"]

BARE_TYPER = """
import typer
app = typer.Typer(add_completion=False)
@app.command()
def main(path: str, output: str = "-", quiet: bool = False):
    "A bare Typer app."
app()
"""


def calls(tmp: Path) -> dict[str, list[str]]:
    """The calls measured (a name -> argv), on the sample data and a store converted from its GloVe text."""
    out = str(tmp / "out.arrow")
    return {
        "--help": [*EMBEDTOOL, "--help"],
        "embed ids.npy": [*EMBEDTOOL, "embed", str(SAMPLE / "weights.npy"), str(SAMPLE / "ids.npy"), "-o", out, "-q"],
        "bag ids.npy": [*EMBEDTOOL, "bag", str(SAMPLE / "weights.npy"), str(SAMPLE / "ids.npy"), "-o", out, "-q",
                        "--mode", "mean"],
        "bag glove.txt tokens.txt": [*EMBEDTOOL, "bag", str(SAMPLE / "glove.txt"), str(SAMPLE / "tokens.txt"), "-o",
                                     out, "-q", "--mode", "mean", "--oov", "skip"],
        "lookup glove.arrow the of": [*EMBEDTOOL, "lookup", str(tmp / "glove.arrow"), "the", "of"],
        "info glove.arrow": [*EMBEDTOOL, "info", str(tmp / "glove.arrow")],
        "convert glove.txt": [*EMBEDTOOL, "convert", str(SAMPLE / "glove.txt"), str(tmp / "converted.arrow")],
    }


def run(argv: list[str], env: dict) -> float:
    """Seconds of one process."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[3:])} failed:\n{done.stderr}")
    return seconds


def imports_numba(argv: list[str], env: dict) -> bool:
    """Whether a call imports numba (checked in a run of its own: ``-X importtime`` slows the process)."""
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    return any(line.split("|")[-1].strip() == "numba" for line in done.stderr.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=9, help="runs per call and cache state (median kept)")
    args = parser.parse_args()
    compileall.compile_dir(ROOT / "embedtool", quiet=1)
    compileall.compile_dir(ROOT / "cli", quiet=1)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        tmp = Path(tmp)
        base_env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
        warm_env = {**base_env, "NUMBA_CACHE_DIR": str(tmp / "warm-cache")}
        subprocess.run([*EMBEDTOOL, "convert", str(SAMPLE / "glove.txt"), str(tmp / "glove.arrow")], env=warm_env,
                       check=True, capture_output=True)
        todo = calls(tmp)
        for argv in todo.values():  # fill the warm cache
            subprocess.run(argv, env=warm_env, capture_output=True)
        reference = {"baseline": [PYTHON, "-c", "import numpy, pyarrow, pyarrow.ipc"],
                     "bare Typer app --help": [PYTHON, "-c", BARE_TYPER, "--help"]}
        times: dict[tuple[str, str], list[float]] = {}
        for round_ in range(args.repeat):
            for name, argv in reference.items():
                times.setdefault((name, "-"), []).append(run(argv, base_env))
            for name, argv in todo.items():
                cold = tmp / f"cold-{round_}"
                times.setdefault((name, "cold"), []).append(run(argv, {**base_env, "NUMBA_CACHE_DIR": str(cold)}))
                shutil.rmtree(cold, ignore_errors=True)
                times.setdefault((name, "warm"), []).append(run(argv, warm_env))
            print(f"round {round_ + 1} of {args.repeat} done", file=sys.stderr)
        median = {key: statistics.median(values) for key, values in times.items()}
        baseline = median[("baseline", "-")]
        typer_help = median[("bare Typer app --help", "-")]
        print(f"baseline (import numpy, pyarrow, pyarrow.ipc): {baseline:.3f} s; bare Typer app --help: "
              f"{typer_help:.3f} s ({typer_help / baseline:.2f}x); median of {args.repeat}\n")
        print("| call | warm s | warm / baseline | cold s | cold / warm | numba |")
        print("|---|---:|---:|---:|---:|---|")
        for name, argv in todo.items():
            warm, cold = median[(name, "warm")], median[(name, "cold")]
            extra = f" ({warm / typer_help:.2f}x the bare Typer app)" if name == "--help" else ""
            numba = "imported" if imports_numba(argv, warm_env) else "no"
            print(f"| `{name}` | {warm:.3f} | {warm / baseline:.2f}x{extra} | {cold:.3f} | {cold / warm:.2f}x "
                  f"| {numba} |")


if __name__ == "__main__":
    main()
