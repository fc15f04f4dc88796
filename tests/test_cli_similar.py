"""The commands `similar`, `analogy` and `evaluate`, driven as a user would (CliRunner and real processes); the
search and evaluation themselves are tested in test_similarity.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from embedtool.vectors import Vectors, load_vectors, save_vectors
from embedtool_cli.app import app

gensim = pytest.importorskip("gensim")
from gensim.models import KeyedVectors  # noqa: E402

DATA = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data")
QUESTIONS = os.path.join(DATA, "questions-words.txt")

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(6)
    v = Vectors(rng.standard_normal((300, 8)).astype(np.float32), [f"w{i}" for i in range(300)])
    return v, save_vectors(v, tmp_path / "w.arrow")


def test_similar_words_json_equals_the_api(store):
    v, path = store
    result = run("similar", path, "w1", "w7", "-k", "4", "--json")
    assert result.exit_code == 0, result.output
    expected = v.most_similar(["w1", "w7"], 4)
    got = json.loads(result.stdout)
    assert [q["query"] for q in got] == ["w1", "w7"]
    assert [[n["id"] for n in q["neighbors"]] for q in got] == expected.ids.tolist()
    assert [[n["token"] for n in q["neighbors"]] for q in got] == expected.tokens
    table = run("similar", path, "w1", "-k", "2")
    assert table.exit_code == 0 and expected.tokens[0][0] in table.stdout and expected.tokens[0][1] in table.stdout


def test_similar_file_of_words_writes_neighbors_with_nulls_for_unknown_words(store, tmp_path):
    v, path = store
    (tmp_path / "q.txt").write_text("w3\nnope\nw9\n")
    result = run("similar", path, tmp_path / "q.txt", "-o", tmp_path / "nn.arrow", "-k", "3")
    assert result.exit_code == 0, result.output
    assert "1 queries are null or not in the table" in result.stderr
    table = feather.read_table(tmp_path / "nn.arrow")
    assert table.schema.field("neighbors").type == pa.list_(
        pa.struct([("id", pa.int64()), ("token", pa.string()), ("score", pa.float32())]))
    rows = table.column("neighbors").to_pylist()
    expected = v.most_similar(["w3", "w9"], 3)
    assert rows[1] is None
    assert [[n["id"] for n in r] for r in (rows[0], rows[2])] == expected.ids.tolist()
    np.testing.assert_allclose([[n["score"] for n in r] for r in (rows[0], rows[2])], expected.scores, rtol=1e-6)


def test_similar_parquet_vectors_against_another_table_keep_columns(store, tmp_path):
    v, path = store
    labels = Vectors(v.matrix[:40] * 2, [f"L{i}" for i in range(40)])
    save_vectors(labels, tmp_path / "labels.parquet")
    queries = np.asarray(v.matrix[[5, 50]])
    pq.write_table(pa.table({"doc": ["a", "b"], "vec": pa.array(list(queries), pa.list_(pa.float32()))}),
                   tmp_path / "q.parquet")
    result = run("similar", path, tmp_path / "q.parquet", "--keep", "doc", "--against", tmp_path / "labels.parquet",
                 "-o", tmp_path / "nn.parquet", "-k", "2", "-q")
    assert result.exit_code == 0, result.output
    table = pq.read_table(tmp_path / "nn.parquet")
    assert table.column_names == ["doc", "neighbors"] and table.column("doc").to_pylist() == ["a", "b"]
    rows = table.column("neighbors").to_pylist()
    assert [[n["token"] for n in r] for r in rows] == labels.most_similar(queries, 2).tokens
    assert rows[0][0]["token"] == "L5"  # a vector query does not exclude its own row


def test_similar_errors_are_one_line_and_leave_no_file(store, tmp_path):
    _, path = store
    bad = run("similar", path, "nope")
    assert bad.exit_code == 1 and bad.stderr == "Error: token 'nope' is not in the vocabulary\n"
    pq.write_table(pa.table({"a": ["w1"], "b": ["w2"]}), tmp_path / "q.parquet")
    two = run("similar", path, tmp_path / "q.parquet", "-o", tmp_path / "nn.arrow")
    assert two.exit_code == 1 and "say which column holds the queries with --column" in two.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.parquet", "w.arrow"]
    clash = run("similar", path, tmp_path / "q.parquet", "-o", path)
    assert clash.exit_code == 1 and "would overwrite an input" in clash.stderr


def test_analogy_and_evaluate_commands_give_the_apis_numbers(tmp_path):
    path = os.path.join(DATA, "euclidean_vectors.bin")
    ours, kv = load_vectors(path), KeyedVectors.load_word2vec_format(path, binary=True)
    a, b, c = kv.index_to_key[20:23]
    result = run("analogy", path, a, b, c, "-k", "3", "--method", "mul", "--json")
    assert result.exit_code == 0, result.output
    assert [n["id"] for n in json.loads(result.stdout)[0]["neighbors"]] == \
        ours.analogy(a, b, c, 3, "mul").ids[0].tolist()
    result = run("evaluate", path, "--analogies", QUESTIONS, "--pairs", os.path.join(DATA, "wordsim353.tsv"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    accuracy, _ = kv.evaluate_word_analogies(QUESTIONS)
    assert report["analogies"][0]["accuracy"] == accuracy
    assert report["pairs"][0]["spearman"] == ours.evaluate_pairs(os.path.join(DATA, "wordsim353.tsv")).spearman
    assert run("evaluate", path).exit_code == 1


@pytest.mark.parametrize("command", ["similar", "analogy", "evaluate"])
def test_help_does_not_import_numba(command):
    code = (
        "import sys\n"
        f"sys.argv = ['embedtool', {command!r}, '--help']\n"
        "from embedtool_cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('NUMBA' if 'numba' in sys.modules else 'CLEAN', file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stderr.strip().endswith("CLEAN") and "Usage" in proc.stdout


def test_one_word_similar_imports_no_numba_and_equals_the_batch_path(tmp_path):
    """The one-word command (a real process) loads neither numba nor pandas nor rich: a word is found by a scan,
    not an index; the search is NumPy's; the table is plain text. Its neighbours are the batch path's."""
    rng = np.random.default_rng(10)
    v = Vectors(rng.standard_normal((70_000, 12)).astype(np.float32), [f"w{i}" for i in range(70_000)])
    path = save_vectors(v, tmp_path / "big.arrow")
    code = (
        "import sys\n"
        f"sys.argv = ['embedtool', 'similar', {str(path)!r}, 'w17', '-k', '5', '--json']\n"
        "from embedtool_cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted({'numba', 'pandas', 'rich'} & set(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stderr.strip().endswith("[]"), proc.stderr
    got = [n["id"] for n in json.loads(proc.stdout)[0]["neighbors"]]
    batch = v.most_similar(["w17"] * 9, 5)  # nine queries: the compiled path
    assert got == batch.ids[0].tolist()


def test_similar_prints_tokens_as_they_are_aligned_by_terminal_width(tmp_path):
    """Bracketed tokens (BERT's [CLS], [/x]) are not markup; wide characters take two columns."""
    tokens = ["[CLS]", "[/SEP]", "a[b]c", "東京"]
    v = Vectors(np.array([[1, 0], [0.9, 0.1], [0.5, 0.5], [0.8, 0.2]], np.float32), tokens)
    path = save_vectors(v, tmp_path / "bert.arrow")
    result = run("similar", path, "[CLS]", "-k", "3")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "[CLS]"
    assert [line.split()[2] for line in lines[2:5]] == [tokens[i] for i in v.most_similar("[CLS]", 3).ids[0]]
    widths = {len(line) + line.count("東") + line.count("京") for line in lines[1:5]}  # two columns each
    assert len(widths) == 1  # the right-aligned score column ends at one terminal column on every line


def test_similar_to_stdout_writes_an_arrow_stream(store, tmp_path):
    v, path = store
    (tmp_path / "q.txt").write_text("w4\n")
    result = runner.invoke(app, ["similar", str(path), str(tmp_path / "q.txt"), "-o", "-", "-k", "2"])
    assert result.exit_code == 0, result.output
    table = pa.ipc.open_stream(result.stdout_bytes).read_all()
    assert [n["id"] for n in table.column("neighbors")[0].as_py()] == v.most_similar("w4", 2).ids[0].tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.txt", "w.arrow"]
