"""load_model tells a fastText .bin from a static model directory, and refuses anything else in one line."""

import struct

import pytest

from embedtool.errors import InputFormatError
from embedtool.formats.fasttext_bin import FastTextModel
from embedtool.models import is_model, load_model
from embedtool.formats.static_model import StaticModel


def test_a_fasttext_bin_and_a_directory_are_told_apart(tmp_path):
    pytest.importorskip("tokenizers")
    from test_formats_fasttext_bin import train
    from test_formats_static_model import make_model, sentences, wordpiece_tokenizer

    path, _ = train(tmp_path, "m.bin", minn=2, maxn=3)
    assert is_model(path) and isinstance(load_model(path), FastTextModel)
    directory = make_model(tmp_path / "m2v", wordpiece_tokenizer(sentences(50)), "float32", False, False)
    assert is_model(directory)
    model = load_model(directory, normalize=True)
    assert isinstance(model, StaticModel) and model.normalize
    with pytest.raises(InputFormatError, match="normalize apply to model directories"):
        load_model(path, normalize=True)


def test_anything_else_is_one_line(tmp_path):
    other = tmp_path / "v.txt"
    other.write_bytes(struct.pack("<i", 5) + b"not a model")
    assert not is_model(other) and not is_model(tmp_path)
    for path in (other, tmp_path, tmp_path / "missing"):
        with pytest.raises(InputFormatError, match="neither a fastText .bin model nor a static model directory"):
            load_model(path)
