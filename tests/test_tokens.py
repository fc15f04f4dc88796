"""The compiled text parsers of tokens.py against plain-Python references: id lines and space-separated tokens
looked up in a vocabulary."""

import re

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedtool.errors import InputFormatError
from embedtool.tokens import parse_id_lines, scan_space_tokens
from embedtool.vectors import Vectors

pytestmark = pytest.mark.usefixtures("both_paths")  # the kernels and the small-input path (conftest.py)


def reference_id_lines(chunk: bytes, first_line: int):
    """Plain Python: whitespace-split lines of ``[+-]digits`` (at most 18 digits); the first other token is an error."""
    values, offsets = [], [0]
    for number, line in enumerate(chunk.split(b"\n")[:-1] if chunk.endswith(b"\n") else chunk.split(b"\n")):
        for column, token in enumerate(line.split(), 1):
            digits = token[1:] if token[:1] in (b"-", b"+") else token
            if not (digits.isdigit() and len(digits) <= 18):
                return f"{token.decode('utf-8', 'replace')!r} at line {first_line + number}, column {column}"
            values.append(int(token))
        offsets.append(len(values))
    return values, offsets


ID_TOKENS = st.one_of(
    st.integers(0, 99_999).map(str),
    st.integers(-(10**18) + 1, 10**18 - 1).map(str),
    st.integers(0, 10**6).map(lambda v: f"+{v}"),
    st.sampled_from(["x7", "12a", "-", "+", "3-", "1" * 19, "0" * 7 + "5", "é", "1.5", "4:2", "9/3", "~"]),
)


LINES = st.lists(st.lists(st.tuples(ID_TOKENS, st.sampled_from([" ", "  ", "\t", " \r", "\x0b", "\x0c"])),
                          max_size=12), max_size=12)


@settings(max_examples=300, deadline=None)
@given(LINES, st.booleans())
def test_id_lines_parse_like_the_reference(lines, final_newline):
    """The word-at-a-time parser gives the values, line ends and first error of a plain Python one."""
    text = "\n".join("".join(f"{token}{space}" for token, space in line) for line in lines)
    chunk = (text + "\n" if final_newline or not text else text).encode()
    expected = reference_id_lines(chunk, 5)
    if isinstance(expected, str):
        with pytest.raises(InputFormatError, match=f"^{re.escape(expected)} is not an integer id$"):
            parse_id_lines(chunk, 5)
        return
    values, offsets = parse_id_lines(chunk, 5)
    assert values.tolist() == expected[0]
    assert offsets.tolist() == expected[1]


SCAN_VOCAB = ["a", "a\x00", "the", "cat", "é", "日本", "12345678", "123456789", "abcdefghijklmnop",
              "abcdefghijklmnopq", "x" * 40, "tab\tin", "a\rb", "a b", ""]


SCAN_TOKENS = st.one_of(st.sampled_from(SCAN_VOCAB), st.sampled_from(["dog", "1234567", "abcdefghijklmno", "ü", "\r",
                                                                      "\x00", "x" * 41]),
                        st.text(st.characters(codec="utf-8", exclude_characters="\n "), max_size=20))


def reference_space_tokens(chunk: bytes) -> tuple[list[bytes], list[int]]:
    """Plain Python: each line without its trailing ``\\r``s, split on single spaces, empty tokens dropped."""
    tokens, offsets = [], [0]
    for line in chunk.split(b"\n")[:-1]:
        tokens += [t for t in line.rstrip(b"\r").split(b" ") if t]
        offsets.append(len(tokens))
    return tokens, offsets


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.tuples(SCAN_TOKENS, st.sampled_from([" ", "  ", "\r", " \r", "\r\r"])), max_size=10),
                max_size=10))
def test_space_token_scan_matches_split_then_lookup(lines):
    """The fused split-and-probe scan gives the line offsets, ids and OOV token strings of a plain Python split and
    dict lookup, for tokens on both sides of 8 and 16 bytes, non-ASCII ones and ``\\r`` in any place."""
    vectors = Vectors(np.zeros((len(SCAN_VOCAB), 1), np.float32), tokens=pa.array(SCAN_VOCAB, pa.string()))
    row = {word.encode(): i for i, word in reversed(list(enumerate(SCAN_VOCAB)))}
    chunk = "".join("".join(t + sep for t, sep in line) + "\n" for line in lines).encode()
    tokens, offsets = reference_space_tokens(chunk)
    ids, scanned_offsets, tokens_at = scan_space_tokens(chunk, 1, vectors.token_index)
    assert scanned_offsets.tolist() == offsets
    assert ids.tolist() == [row.get(t, -1) for t in tokens]
    assert tokens_at(np.arange(len(ids))).to_pylist() == [t.decode() for t in tokens]
