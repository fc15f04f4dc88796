"""``embedtool lookup``: tokens or row ids to vectors, unknown tokens, JSON, and damaged weights in a real
process."""

import json
import random

import numpy as np
import pytest

from embedtool.vectors import Vectors, load_vectors, save_vectors
from helpers import failed, run, subprocess_run


@pytest.mark.parametrize("suffix", [".arrow", ".parquet", ".npy", ".safetensors"])
def test_byte_flips_and_truncations_in_weights_never_crash(tmp_path, suffix):
    path = tmp_path / f"w{suffix}"
    save_vectors(Vectors(np.random.default_rng(0).standard_normal((300, 8), np.float32),
                         [f"w{i}" for i in range(300)]), path)
    good = path.read_bytes()
    rng = random.Random(19)
    for k in range(5):
        mutated = bytearray(good)
        if k == 4:
            del mutated[rng.randrange(1, len(mutated)):]
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        path.write_bytes(mutated)
        result = subprocess_run("lookup", path, "w1", "w299")
        assert result.returncode in (0, 1), (k, result.returncode, result.stderr)
        assert "Traceback" not in result.stderr and result.stderr.count("\n") <= 1, result.stderr


def test_lookup_prints_ids_and_vectors(glove):
    result = run("lookup", glove, "the", ". . .")
    assert result.exit_code == 0, result.output
    the, dots = result.stdout.splitlines()
    v = load_vectors(glove)
    assert the.split("\t")[:2] == ["the", "1"] and dots.split("\t")[:2] == [". . .", "143"]
    np.testing.assert_array_equal(np.array(the.split("\t")[2].split(), np.float32), v.matrix[1])
    assert the.split("\t")[2].split()[:2] == ["0.34078562", "-0.055875845"]


def test_lookup_reports_unknown_tokens_and_exits_1(glove):
    result = run("lookup", glove, "the", "zzz", "qqq")
    assert result.exit_code == 1
    assert result.stdout.startswith("the\t1\t") and len(result.stdout.splitlines()) == 1
    assert result.stderr == "Error: not in the vocabulary: 'zzz', 'qqq'\n"


def test_lookup_json(glove):
    result = run("lookup", glove, "of", "zzz", "--json")
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    v = load_vectors(glove)
    assert rows[0]["token"] == "of" and rows[0]["id"] == 2
    np.testing.assert_array_equal(np.array(rows[0]["vector"], np.float32), v.matrix[2])
    assert rows[1] == {"token": "zzz", "id": None, "vector": None}


def test_lookup_by_row_id_without_a_vocab(tmp_path):
    save_vectors(np.arange(6, dtype=np.float16).reshape(3, 2), tmp_path / "w.npy")
    result = run("lookup", tmp_path / "w.npy", "2", "0")
    assert result.exit_code == 0 and result.stdout == "2\t2\t4 5\n0\t0\t0 1\n"
    result = run("lookup", tmp_path / "w.npy", "7")
    assert result.exit_code == 1 and result.stderr == "Error: not in the table (3 rows): '7'\n"
    for word in ("hello", "\u00b2"):
        failed(run("lookup", tmp_path / "w.npy", word),
               f"{tmp_path / 'w.npy'} has no tokens: give row ids, or a vocab with --vocab")
