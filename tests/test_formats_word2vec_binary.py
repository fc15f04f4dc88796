"""word2vec's binary format (formats/word2vec_binary.py): an untrusted header is refused before anything is
allocated for it. Reading and writing its records is tested with the text formats (test_formats_text.py)."""

import pytest

from helpers import one_line_error, run


@pytest.mark.parametrize("dim", [2**64, 2**25])
def test_word2vec_binary_header_with_a_huge_dim_is_one_line(tmp_path, dim):
    """A header's dim is untrusted: rows over the row limit are refused before anything is allocated for them."""
    (tmp_path / "w.bin").write_bytes(f"2 {dim}\n".encode() + b"a " + b"\0" * 64)
    one_line_error(run("info", tmp_path / "w.bin"), f"w.bin:1: a row of {dim:,} values is longer than")
