"""The weight options every command that reads a table takes (cli/weights.py), and weights that cannot be read at
all: one line ``Error: ...``, never a usage box."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from helpers import EMBEDTOOL, WEIGHT, one_line_error, others_can_run, run


def test_unreadable_weights_are_one_line_not_a_usage_box(tmp_path):
    prefix = []
    if os.geteuid() == 0:  # root reads anything: run as nobody, in a directory nobody can enter
        if shutil.which("setpriv") is None:
            pytest.skip("root without setpriv cannot make a file unreadable")
        if not others_can_run(EMBEDTOOL):
            pytest.skip("the installed command is in a folder other users cannot enter")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        tmp_path = Path(tempfile.mkdtemp())
        tmp_path.chmod(0o777)
    try:
        np.save(tmp_path / "w.npy", WEIGHT)
        (tmp_path / "w.npy").chmod(0)
        env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), HOME=str(tmp_path))
        for argv in (["info", "w.npy"], ["lookup", "w.npy", "0"], ["convert", "w.npy", "x.arrow"],
                     ["embed", "w.npy", "-", "-o", "-"]):
            result = subprocess.run([*prefix, str(EMBEDTOOL), *argv], capture_output=True, text=True, cwd=tmp_path,
                                    env=env, timeout=300, input="0\n")
            assert (result.returncode, result.stderr) == (1, "Error: w.npy: Permission denied\n"), argv
    finally:
        if prefix:
            shutil.rmtree(tmp_path)


def test_missing_or_directory_weights_are_one_line(tmp_path):
    one_line_error(run("info", tmp_path / "nope.npy"), f"{tmp_path / 'nope.npy'}: no such file")
    one_line_error(run("lookup", tmp_path, "0"), f"{tmp_path}: is a directory")


def test_weight_options_reach_the_loader_in_embed_bag_and_info(tmp_path):
    (tmp_path / "g.dat").write_text("a 1 2\nbad row x\nb 3 4\na 5 6\n")
    (tmp_path / "in.txt").write_text("b a\n")
    options = ["--from", "glove", "--on-bad-row", "skip", "--duplicates", "last"]
    info = run("info", tmp_path / "g.dat", "--json", *options)
    assert info.exit_code == 0, info.output
    assert json.loads(info.stdout)["rows"] == 2
    for command in ("embed", "bag"):
        out = tmp_path / f"{command}.arrow"
        result = run(command, tmp_path / "g.dat", tmp_path / "in.txt", "-o", out, "-q", *options)
        assert result.exit_code == 0, result.output
        values = pa.ipc.open_file(str(out)).read_all().column("embedding").combine_chunks()
        values = values.flatten().flatten() if command == "embed" else values.flatten()
        expected = [3, 4, 5, 6] if command == "embed" else [4, 5]  # "a" keeps its last row
        np.testing.assert_array_equal(values.to_numpy(), expected)
    one_line_error(run("info", tmp_path / "g.dat", "--from", "glove"), "g.dat:2")
