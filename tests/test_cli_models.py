"""Models on the command line: a fastText .bin as WEIGHTS of embed, bag, lookup, convert, info and similar (OOV
words get fastText's subword vectors), a static model directory for bag and info (model2vec's encode), the word
tokenizer on raw text, and one-line errors for damaged models and a missing extra."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from embedtool import text_tokenizers
from embedtool_cli.app import app

fasttext = pytest.importorskip("fasttext")
model2vec = pytest.importorskip("model2vec")
pytest.importorskip("tokenizers")

from model_files import make_model, sentences, train, wordpiece_tokenizer  # noqa: E402

runner = CliRunner()
EMBEDTOOL = Path(sys.executable).with_name("embedtool")


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, *fragments) -> None:
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def column(path) -> list:
    return pa.ipc.open_file(str(path)).read_all().column("embedding").to_pylist()


@pytest.fixture(scope="module")
def ft(tmp_path_factory):
    """(path, the real fastText model, lines of vocabulary words and OOV words)."""
    path, model = train(tmp_path_factory.mktemp("ft"), "m.bin", minn=2, maxn=5)
    words = model.get_words()[1:41]
    lines = [words[4 * k : 4 * k + 4] + ["misspeling", "straße日"][: k % 3] for k in range(10)]
    return path, model, lines


def reference(model, words) -> np.ndarray:
    return np.stack([model.get_word_vector(w) for w in words])


@pytest.mark.parametrize("mode", [None, "sum", "mean", "max"])
def test_embed_and_bag_of_a_fasttext_bin(ft, tmp_path, mode):
    path, model, lines = ft
    (tmp_path / "in.txt").write_text("".join(" ".join(line) + "\n" for line in lines))
    args = ["embed"] if mode is None else ["bag", "--mode", mode]
    result = run(*args, path, tmp_path / "in.txt", "-o", tmp_path / "out.arrow")
    assert result.exit_code == 0, result.output
    assert "OOV tokens (filled by subwords); most frequent: 'misspeling'" in result.stderr
    for line, got in zip(lines, column(tmp_path / "out.arrow"), strict=True):
        expected = reference(model, line)
        expected = expected if mode is None else getattr(expected, mode)(0)
        np.testing.assert_allclose(np.array(got, np.float32).reshape(expected.shape), expected, rtol=1e-6)


def test_lookup_prints_subword_vectors_of_oov_words_with_no_id(ft):
    path, model, _ = ft
    word = model.get_words()[5]
    result = run("lookup", path, word, "misspeling")
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [r[:2] for r in rows] == [[word, "5"], ["misspeling", "-"]]
    np.testing.assert_allclose([[float(x) for x in r[2].split()] for r in rows],
                               reference(model, [word, "misspeling"]), rtol=1e-6)
    listed = json.loads(run("lookup", path, "misspeling", "--json").stdout)
    assert listed[0]["id"] is None
    np.testing.assert_allclose(listed[0]["vector"], model.get_word_vector("misspeling"), rtol=1e-6)


def test_convert_writes_the_vocabulary_vectors(ft, tmp_path):
    path, model, _ = ft
    result = run("convert", path, tmp_path / "words.arrow")
    assert result.exit_code == 0, result.output
    table = pa.ipc.open_file(str(tmp_path / "words.arrow")).read_all()
    assert table.column("token").to_pylist() == model.get_words()
    np.testing.assert_allclose(np.array(table.column("vector").to_pylist(), np.float32),
                               reference(model, model.get_words()), rtol=1e-6)
    one_line_error(run("convert", tmp_path / "words.arrow", tmp_path / "m.ftz"), "fasttext-bin models cannot be written")


def test_info_describes_a_fasttext_model(ft):
    path, model, _ = ft
    found = json.loads(run("info", path, "--json").stdout)
    assert found == {"path": str(path), "format": "fasttext-bin", "rows": len(model.get_words()),
                     "dim": model.get_dimension(), "dtype": "float32", "bytes": found["bytes"], "vocab": True,
                     "buckets": 2000, "minn": 2, "maxn": 5, "quantized": False}
    assert found["bytes"] == (len(model.get_words()) + 2000) * model.get_dimension() * 4


def test_similar_takes_a_word_outside_the_vocabulary(ft):
    result = run("similar", ft[0], "misspeling", "-k", "3")
    assert result.exit_code == 0, result.output
    assert "misspeling" in result.stdout


def test_cuda_runs_a_fasttext_model_on_the_cpu_saying_so(ft, tmp_path):
    path, _, lines = ft
    (tmp_path / "in.txt").write_text(" ".join(lines[0]) + "\n")
    result = run("bag", path, tmp_path / "in.txt", "-o", tmp_path / "out.arrow", "--device", "cuda", "-q")
    assert result.exit_code == 0, result.output
    assert result.stderr == "Note: a fastText model's subword vectors are computed on the CPU; running on the CPU\n"


def test_a_truncated_bin_is_one_line(ft, tmp_path):
    cut = tmp_path / "cut.bin"
    cut.write_bytes(ft[0].read_bytes()[:1000])
    one_line_error(run("embed", cut, tmp_path / "in.txt", "-o", tmp_path / "out.arrow"),
                   "cut.bin: not a readable fastText .bin model")
    assert not (tmp_path / "out.arrow").exists()


# --------------------------------------------------------------------------------------------------------------
# Static model directories


@pytest.fixture(scope="module")
def texts():
    return [t for t in sentences(150, seed=2) if "\n" not in t]


@pytest.fixture(scope="module")
def m2v(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("m2v") / "model", wordpiece_tokenizer(sentences(200)), "float16", True,
                      True)


@pytest.mark.parametrize("normalize", [[], ["--no-normalize"], ["--normalize"]], ids=["config", "off", "on"])
def test_bag_of_a_parquet_text_column_is_model2vec_encode(m2v, texts, tmp_path, normalize):
    pq.write_table(pa.table({"text": texts, "id": range(len(texts))}), tmp_path / "docs.parquet")
    result = run("bag", m2v, tmp_path / "docs.parquet", "--column", "text", "--keep", "id", "-o",
                 tmp_path / "out.arrow", *normalize)
    assert result.exit_code == 0, result.output
    on = normalize != ["--no-normalize"]  # the model was saved with normalize=True
    expected = model2vec.StaticModel.from_pretrained(str(m2v)).encode(texts, normalize=on)
    table = pa.ipc.open_file(str(tmp_path / "out.arrow")).read_all()
    assert table.column("id").to_pylist() == list(range(len(texts)))
    assert (b"embedtool.normalize" in table.schema.metadata) == on
    got = np.array(table.column("embedding").to_pylist(), np.float16)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_bag_of_a_text_file_in_a_real_process(m2v, texts, tmp_path):
    (tmp_path / "docs.txt").write_text("".join(t + "\n" for t in texts))
    done = subprocess.run([str(EMBEDTOOL), "bag", str(m2v), str(tmp_path / "docs.txt"), "-o",
                           str(tmp_path / "out.arrow"), "-q"], capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stderr) == (0, "")
    expected = model2vec.StaticModel.from_pretrained(str(m2v)).encode(texts)
    np.testing.assert_allclose(np.array(column(tmp_path / "out.arrow"), np.float16), expected, rtol=1e-5, atol=1e-7)


def test_a_multi_batch_bag_tokenizes_each_word_once_and_is_model2vec_encode(m2v, texts, tmp_path, monkeypatch):
    """Batches of 7 lines share one dict of tokenized words (bounded at 40 words here, so it also starts over):
    later batches reuse earlier ones' words, and every vector stays model2vec's."""
    from embedtool.formats.static_model import StaticModel

    monkeypatch.setattr(text_tokenizers, "KNOWN_WORDS", 40)
    dicts, sizes = set(), []
    tokenize = StaticModel.tokenize

    def spy(self, texts, **options):
        dicts.add(id(options["known"]))
        sizes.append(len(options["known"]))
        return tokenize(self, texts, **options)

    monkeypatch.setattr(StaticModel, "tokenize", spy)
    pq.write_table(pa.table({"text": texts}), tmp_path / "docs.parquet")
    result = run("bag", m2v, tmp_path / "docs.parquet", "--column", "text", "--batch-rows", "7", "-o",
                 tmp_path / "out.arrow", "-q")
    assert result.exit_code == 0, result.output
    assert len(sizes) == -(-len(texts) // 7) and len(dicts) == 1
    assert sizes[0] == 0 and sizes[1] > 0  # the words of the first batch are there for the second
    assert any(later < size for size, later in zip(sizes, sizes[1:]))  # emptied past KNOWN_WORDS
    expected = model2vec.StaticModel.from_pretrained(str(m2v)).encode(texts)
    np.testing.assert_allclose(np.array(column(tmp_path / "out.arrow"), np.float16), expected, rtol=1e-5, atol=1e-7)


def test_info_describes_a_model_directory(m2v):
    found = json.loads(run("info", m2v, "--json").stdout)
    assert (found["format"], found["tokenizer"], found["normalize"], found["max_length"]) == \
        ("static-model", "WordPiece", True, 512)


def test_a_directory_without_its_tokenizer_is_one_line(m2v, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes((m2v / "model.safetensors").read_bytes())
    one_line_error(run("bag", broken, tmp_path / "in.txt", "-o", tmp_path / "out.arrow"),
                   "broken: is a directory, not a weight file nor a static model directory")


def test_model_options_are_in_the_help_of_the_commands_they_apply_to():
    assert "--normalize" in run("bag", "--help").stdout and "--max-length" in run("embed", "--help").stdout
    assert "--normalize" not in run("embed", "--help").stdout and "--max-length" not in run("info", "--help").stdout


# --------------------------------------------------------------------------------------------------------------
# Raw text


@pytest.fixture
def glove(tmp_path):
    words = ["the", "world", ",", "said", "he", "was", "not", "his", "."]
    path = tmp_path / "glove.txt"
    path.write_text("".join(f"{w} {i} {-i}\n" for i, w in enumerate(words)))
    return path


def test_the_word_tokenizer_finds_he_and_his_in_a_real_process(glove, tmp_path):
    done = subprocess.run([str(EMBEDTOOL), "embed", str(glove), "-", "-o", str(tmp_path / "out.arrow"),
                           "--tokenizer", "word", "--oov", "skip"], input="The world, said he, was not his.\n",
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 OOV tokens (skip); most frequent: 'The' (1)" in done.stderr
    rows = [[float(x) for x in v] for v in column(tmp_path / "out.arrow")[0]]
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4, 2, 5, 6, 7, 8]  # world , said he , was not his .


def test_lowercase_and_a_tokenizer_json(glove, tmp_path):
    (tmp_path / "in.txt").write_text("The world, said he\n")
    result = run("embed", glove, tmp_path / "in.txt", "-o", tmp_path / "out.arrow", "--tokenizer", "word",
                 "--lowercase")
    assert result.exit_code == 0, result.output
    assert [int(v[0]) for v in column(tmp_path / "out.arrow")[0]] == [0, 1, 2, 3, 4]
    tokenizer = wordpiece_tokenizer(["the world, said he, was not his."] * 20)
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    result = run("embed", glove, tmp_path / "in.txt", "-o", tmp_path / "out2.arrow", "--tokenizer",
                 tmp_path / "tokenizer.json")
    assert result.exit_code == 0, result.output
    assert [int(v[0]) for v in column(tmp_path / "out2.arrow")[0]] == [0, 1, 2, 3, 4]  # BERT-style: lower-cased


def test_a_tokenizer_json_without_the_extra_is_one_line(glove, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_tokenizers(name, *args, **kwargs):
        if name == "tokenizers":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    (tmp_path / "in.txt").write_text("the world\n")
    (tmp_path / "tokenizer.json").write_text("{}")
    monkeypatch.setattr(builtins, "__import__", without_tokenizers)
    one_line_error(run("embed", glove, tmp_path / "in.txt", "-o", tmp_path / "out.arrow", "--tokenizer",
                       tmp_path / "tokenizer.json"), "pip install 'embedtool[text]'")
