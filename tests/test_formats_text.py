"""The text formats: every parse rule and edge case of GloVe / word2vec text and word2vec binary, exact rounding,
the compiled parser held to the plain-Python rules, and the text writers."""

import bz2
import gzip
import lzma
import struct
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedtool.formats import text_blocks, text_numbers, text_rows
from embedtool.errors import InputFormatError
from embedtool.vectors import Vectors, load_vectors, save_vectors

HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


pytestmark = pytest.mark.usefixtures("both_paths")  # the kernels and the small-input path (conftest.py)


def load(tmp_path, content: bytes, name="v.txt", **options):
    path = tmp_path / name
    path.write_bytes(content)
    return load_vectors(path, **options)


def error(tmp_path, content: bytes, name="v.txt", **options) -> str:
    """The message of the InputFormatError loading ``content`` raises, without the directory."""
    with pytest.raises(InputFormatError) as e:
        load(tmp_path, content, name, **options)
    return str(e.value).replace(f"{tmp_path}/", "")


def tokens(v):
    return v.tokens.to_pylist()


# --------------------------------------------------------------------------------------------------------------
# Tokens and fields


def test_tokens_with_spaces_are_everything_before_the_last_d_fields(tmp_path):
    v = load(tmp_path, b". . . 1 2\nat name@domain.com 3 4\nb 5 6\n")
    assert tokens(v) == [". . .", "at name@domain.com", "b"]
    np.testing.assert_array_equal(v.matrix, [[1, 2], [3, 4], [5, 6]])


def test_runs_of_spaces_in_a_token_join_to_one_and_leading_spaces_go(tmp_path):
    v = load(tmp_path, b"a   b 1 2\n  c 3    4\n")
    assert tokens(v) == ["a b", "c"]
    np.testing.assert_array_equal(v.matrix, [[1, 2], [3, 4]])


def test_unicode_spaces_are_part_of_tokens(tmp_path):
    v = load(tmp_path, "a\u00a0b 1 2\nc\u2009d 3 4\ne\u3000f\u0085 5 6\n".encode())
    assert tokens(v) == ["a\u00a0b", "c\u2009d", "e\u3000f\u0085"]
    assert v.ids(["a\u00a0b"]).tolist() == [0]


def test_tab_separated_row_is_an_error_naming_line_and_token(tmp_path):
    message = error(tmp_path, b"a 1 2\nb\t3\t4\n")
    assert message == (
        "v.txt:2: token 'b\\t3\\t4': expected a token and 2 values, found 1 field "
        "(fields are separated by spaces, this line has tabs)"
    )


def test_tab_inside_the_values_is_an_error(tmp_path):
    message = error(tmp_path, b"a 1 2\nb 3\t4 5\n")
    assert message == (
        "v.txt:2: token 'b': value 1 of 2 is not a number: '3\\t4' (fields are separated by spaces, this line has tabs)"
    )


def test_trailing_spaces_are_stripped(tmp_path):
    v = load(tmp_path, b"a 1 2   \nb 3 4 \n")
    assert tokens(v) == ["a", "b"]
    np.testing.assert_array_equal(v.matrix, [[1, 2], [3, 4]])


def test_crlf_line_ends_are_stripped(tmp_path):
    v = load(tmp_path, b"a 1 2\r\nb 3 4 \r\nc 5 6\r\n")
    assert tokens(v) == ["a", "b", "c"]
    np.testing.assert_array_equal(v.matrix, [[1, 2], [3, 4], [5, 6]])


def test_a_carriage_return_inside_a_row_is_an_error(tmp_path):
    assert error(tmp_path, b"a 1 2\nb 3\r4 5\n") == "v.txt:2: token 'b': value 1 of 2 is not a number: '3\\r4'"


def test_leading_byte_order_mark_is_stripped(tmp_path):
    v = load(tmp_path, b"\xef\xbb\xbfa 1 2\nb 3 4\n")
    assert tokens(v) == ["a", "b"]


def test_last_line_without_newline(tmp_path):
    v = load(tmp_path, b"a 1 2\nb 3 4")
    assert tokens(v) == ["a", "b"]
    np.testing.assert_array_equal(v.matrix, [[1, 2], [3, 4]])


def test_blank_line_is_an_error(tmp_path):
    assert error(tmp_path, b"a 1 2\n\nb 3 4\n") == "v.txt:2: blank line"
    assert error(tmp_path, b"a 1 2\n   \r\nb 3 4\n") == "v.txt:2: blank line"


def test_blank_line_skipped_on_request(tmp_path):
    v = load(tmp_path, b"a 1 2\n\nb 3 4\n", on_bad_row="skip")
    assert tokens(v) == ["a", "b"]
    np.testing.assert_array_equal(v.matrix, [[1, 2], [3, 4]])
    assert v.metadata["skipped_rows"] == 1


def test_too_few_fields_is_an_error(tmp_path):
    assert error(tmp_path, b"a 1 2\nb 3\nc 5 6\n") == "v.txt:2: token 'b': expected a token and 2 values, found 2 fields"
    assert error(tmp_path, b"a 1 2\nb\nc 5 6\n") == "v.txt:2: token 'b': expected a token and 2 values, found 1 field"


def test_wrong_field_counts_skipped_leave_no_stray_row(tmp_path):
    v = load(tmp_path, b"a 1 2\nb 3\nc 5 6\nd x 7\ne 8 9\n", on_bad_row="skip")
    assert tokens(v) == ["a", "c", "e"]
    np.testing.assert_array_equal(v.matrix, [[1, 2], [5, 6], [8, 9]])
    assert v.metadata["skipped_rows"] == 2


def test_unparsable_number_is_an_error(tmp_path):
    assert error(tmp_path, b"a 1 2\nb 3 4x\n") == "v.txt:2: token 'b': value 2 of 2 is not a number: '4x'"
    assert error(tmp_path, b"a 1 2\nb 1e 4\n") == "v.txt:2: token 'b': value 1 of 2 is not a number: '1e'"
    assert error(tmp_path, b"a 1 2\nb 1_0 4\n") == "v.txt:2: token 'b': value 1 of 2 is not a number: '1_0'"


def test_number_syntax_follows_python_float(tmp_path):
    v = load(tmp_path, b"a +1 -2. .5 1e3 -1.5E-2 0e999 -0\n")
    np.testing.assert_array_equal(v.matrix, np.array([[1, -2, 0.5, 1000, -0.015, 0, 0]], np.float32))
    assert np.signbit(v.matrix[0, 6])


def test_empty_file_is_an_error(tmp_path):
    assert error(tmp_path, b"") == "v.txt: empty file"


def test_a_file_of_only_words_is_an_error(tmp_path):
    assert error(tmp_path, b"a b\nc d\n") == "v.txt:1: no vector found: expected a token followed by numbers on each line"


# --------------------------------------------------------------------------------------------------------------
# Header and dimension


def test_header_is_detected_and_skipped(tmp_path):
    v = load(tmp_path, b"2 3\na 1 2 3\nb 4 5 6\n", name="v.vec")
    assert tokens(v) == ["a", "b"]
    assert v.matrix.shape == (2, 3)


def test_header_row_count_mismatch_is_an_error_stating_both(tmp_path):
    assert error(tmp_path, b"3 2\na 1 2\nb 3 4\n", name="v.vec") == "v.vec:1: header says 3 rows but the file has 2"
    assert error(tmp_path, b"1 2\na 1 2\nb 3 4\n", name="v.vec") == "v.vec:1: header says 1 rows but the file has 2"


def test_header_dimension_mismatch_is_an_error(tmp_path):
    assert error(tmp_path, b"2 3\na 1 2\nb 3 4\n", name="v.vec") == (
        "v.vec:1: header '2 3' says 3 values per row, but the rows after it have 2 values"
    )


def test_two_integers_are_a_row_when_the_rows_have_one_value(tmp_path):
    v = load(tmp_path, b"5 2\na 1\nb 3\n")
    assert tokens(v) == ["5", "a", "b"]
    np.testing.assert_array_equal(v.matrix, [[2], [1], [3]])


def test_dimension_comes_from_most_rows_not_a_token_ending_in_a_number(tmp_path):
    v = load(tmp_path, b"at 3 0.5 0.25\nb 1 2\nc 3 4\n")
    assert tokens(v) == ["at 3", "b", "c"]
    np.testing.assert_array_equal(v.matrix, [[0.5, 0.25], [1, 2], [3, 4]])


def test_header_only_file_is_an_empty_table(tmp_path):
    v = load(tmp_path, b"0 300\n", name="v.vec")
    assert v.matrix.shape == (0, 300) and tokens(v) == []


def test_limit_reads_the_first_rows_and_ignores_the_header_count(tmp_path):
    v = load(tmp_path, b"3 2\na 1 2\nb 3 4\nc 5 6\n", name="v.vec", limit=2)
    assert tokens(v) == ["a", "b"]
    v = load(tmp_path, b"a 1 2\nb 3 4\nc 5 6\n", limit=0)
    assert v.matrix.shape == (0, 2)


# --------------------------------------------------------------------------------------------------------------
# Duplicates, non-finite values, encodings


DUPLICATED = b"a 1 2\nb 3 4\na 5 6\nc 7 8\nb 9 10\n"


def test_duplicates_keep_the_first_row_by_default(tmp_path):
    v = load(tmp_path, DUPLICATED)
    assert tokens(v) == ["a", "b", "c"]
    np.testing.assert_array_equal(v.matrix, [[1, 2], [3, 4], [7, 8]])
    assert v.metadata["duplicates"] == 2


def test_duplicates_keep_the_last_row(tmp_path):
    v = load(tmp_path, DUPLICATED, duplicates="last")
    assert tokens(v) == ["a", "c", "b"]
    np.testing.assert_array_equal(v.matrix, [[5, 6], [7, 8], [9, 10]])
    assert v.ids(["a", "b", "c"]).tolist() == [0, 2, 1]


def test_duplicates_as_an_error_name_both_lines(tmp_path):
    assert error(tmp_path, DUPLICATED, duplicates="error") == "v.txt:3: duplicate token 'a' (first at line 1)"


def test_duplicate_lines_are_counted_after_skipped_rows(tmp_path):
    content = b"4 2\na 1 2\n\nb 3 4\na 5 6\n"
    assert error(tmp_path, content, name="v.vec", on_bad_row="skip", duplicates="error") == (
        "v.vec:5: duplicate token 'a' (first at line 2)"
    )


def test_nan_is_an_error(tmp_path):
    assert error(tmp_path, b"a 1 2\nb nan 4\n") == (
        "v.txt:2: token 'b': value 1 of 2 is not finite: 'nan' (use --allow-nonfinite to keep it)"
    )
    assert error(tmp_path, b"a 1 2\nb 1 -Infinity\n") == (
        "v.txt:2: token 'b': value 2 of 2 is not finite: '-Infinity' (use --allow-nonfinite to keep it)"
    )


def test_overflow_is_an_error(tmp_path):
    assert error(tmp_path, b"a 1 2\nb 1e39 4\n") == (
        "v.txt:2: token 'b': value 1 of 2 overflows float32: '1e39' (use --allow-nonfinite to keep it)"
    )
    assert error(tmp_path, b"a 1 2\nb 70000 4\n", dtype="float16") == (
        "v.txt:2: token 'b': value 1 of 2 overflows float16: '70000' (use --allow-nonfinite to keep it)"
    )


def test_nonfinite_values_allowed_on_request(tmp_path):
    v = load(tmp_path, b"a NaN inf\nb -INF 1e39\n", allow_nonfinite=True)
    assert np.isnan(v.matrix[0, 0])
    np.testing.assert_array_equal(v.matrix[:, 1], [np.inf, np.inf])
    assert v.matrix[1, 0] == -np.inf


INVALID_UTF8 = b"a 1 2\ncaf\xe9 3 4\n"


def test_invalid_utf8_is_an_error_naming_the_line_and_bytes(tmp_path):
    assert error(tmp_path, INVALID_UTF8) == (
        "v.txt:2: token b'caf\\xe9' is not valid utf-8: byte 0xe9 at position 3 "
        "(use --errors replace or --errors ignore, or --encoding)"
    )


def test_invalid_utf8_replaced(tmp_path):
    assert tokens(load(tmp_path, INVALID_UTF8, errors="replace")) == ["a", "caf\ufffd"]


def test_invalid_utf8_ignored(tmp_path):
    assert tokens(load(tmp_path, INVALID_UTF8, errors="ignore")) == ["a", "caf"]


def test_invalid_utf8_row_skipped(tmp_path):
    v = load(tmp_path, INVALID_UTF8, on_bad_row="skip")
    assert tokens(v) == ["a"] and v.metadata["skipped_rows"] == 1


def test_overlong_and_surrogate_utf8_are_invalid(tmp_path):
    for raw in (b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"):
        assert tokens(load(tmp_path, b"a" + raw + b" 1\n", errors="replace"))[0].startswith("a\ufffd")


def test_other_encoding(tmp_path):
    v = load(tmp_path, "café 1 2\nnaïve 3 4\n".encode("latin-1"), encoding="latin-1")
    assert tokens(v) == ["café", "naïve"]


def test_multibyte_utf8_tokens_are_kept_as_they_are(tmp_path):
    words = ["日本語", "😀", "Ωmega", "e\u0301"]
    v = load(tmp_path, "".join(f"{w} {i} 1\n" for i, w in enumerate(words)).encode())
    assert tokens(v) == words


# --------------------------------------------------------------------------------------------------------------
# Exact rounding


def exact(text: str, dtype) -> np.ndarray:
    """The ``dtype`` value nearest the decimal, ties to even, by comparing candidates as Fractions (inf counts as
    2**maxexp, the first value past the largest finite one, as IEEE rounding has it)."""
    dtype = np.dtype(dtype)
    x = Fraction(text)
    top = Fraction(2) ** np.finfo(dtype).maxexp

    def value(c):
        return Fraction(float(c)) if np.isfinite(c) else (top if c > 0 else -top)

    with np.errstate(over="ignore"):
        d = dtype.type(float(x)) if abs(x) < 2**1024 else dtype.type(np.inf if x > 0 else -np.inf)
        candidates = [d, np.nextafter(d, dtype.type(-np.inf)), np.nextafter(d, dtype.type(np.inf))]
    return min(candidates, key=lambda c: (abs(value(c) - x), int(c.view(f"u{dtype.itemsize}")) & 1))


HALFWAY = [
    "1.000000059604644775390625",  # exactly 1 + 2**-24: a tie, to even (1)
    "1.00000005960464477539062500001",  # just above it: up
    "1.0000000596046447753906249999",  # just below it: down
    "1.0000000596046448",  # 17 digits (a mantissa over 2**53): above the tie
    "1.0000000596046447",  # below it
    "0.12573022246360779",  # a float32 printed as float64
    "1.000000178813934326171875",  # 1 + 3 * 2**-24: a tie, to even (1 + 2**-22)
    "7.00649232162408535461864791644958065640130970938257885878534141944895541342930300743319094181060791015625e-46",
    "7.0064923216240854e-46",
    "3.4028235677973366e38",
    "0.1",
    "16777217",
    "16777219",
    "9007199254740993",
    "1e-45",
    "1.4e-45",
]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_values_are_correctly_rounded_to_the_dtype(tmp_path, dtype):
    texts = HALFWAY + ["65520", "65519.99", "0.00006103515625", "2.98023223876953125e-8", "2.9802322387695313e-8"]
    v = load(tmp_path, ("a " + " ".join(texts) + "\n").encode(), dtype=dtype, allow_nonfinite=True)
    expected = np.array([exact(t, dtype) for t in texts], dtype)
    np.testing.assert_array_equal(v.matrix[0].view(f"u{np.dtype(dtype).itemsize}"),
                                  expected.view(f"u{np.dtype(dtype).itemsize}"))


@HYPOTHESIS
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=40), st.sampled_from([np.float32, np.float16]))
def test_random_bit_patterns_round_trip_through_text(tmp_path, bits, dtype):
    dtype = np.dtype(dtype)
    values = np.array(bits, np.uint32).astype(f"u{dtype.itemsize}").view(dtype)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return
    path = tmp_path / "r.txt"
    save_vectors(Vectors(values.reshape(1, -1), ["t"]), path)
    back = load_vectors(path, dtype=dtype).matrix[0]
    np.testing.assert_array_equal(back.view(f"u{dtype.itemsize}"), values.view(f"u{dtype.itemsize}"))


DECIMAL = st.builds(
    lambda sign, digits, point, exp: f"{sign}{digits[:point]}.{digits[point:]}e{exp}",
    st.sampled_from(["", "-", "+"]),
    st.text("0123456789", min_size=1, max_size=25),
    st.integers(0, 25),
    st.integers(-60, 45),
)


@HYPOTHESIS
@given(st.lists(st.one_of(DECIMAL, st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr)), min_size=1, max_size=20),
       st.sampled_from([np.float16, np.float32, np.float64]))
def test_random_decimals_parse_to_the_nearest_value(tmp_path, texts, dtype):
    path = tmp_path / "d.txt"
    path.write_text("t " + " ".join(texts) + "\n")
    got = load_vectors(path, dtype=dtype, allow_nonfinite=True).matrix[0]
    expected = np.array([text_numbers.exact_value(t, np.dtype(dtype)) for t in texts], dtype)
    np.testing.assert_array_equal(got, expected)
    assert all(exact(t, dtype) == e for t, e in zip(texts, expected))


# --------------------------------------------------------------------------------------------------------------
# The compiled parser against the plain-Python rules, across blocks and compressions


def reference(content: bytes, opts: text_rows.TextOptions):
    """Tokens, rows and skipped count by ``parse_line`` alone (a loop in Python), for files without a header."""
    lines = content.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    _, dim = text_rows.detect_layout(lines[: text_blocks.SAMPLE_LINES], "x")
    found, rows, skipped = [], [], 0
    for line in lines:
        try:
            token, values = text_rows.parse_line(line, dim, opts)
        except text_rows.BadRow:
            skipped += 1
            continue
        found.append(token)
        rows.append(values)
    return found, np.array(rows, opts.dtype).reshape(len(rows), dim), skipped


FIELD = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.sampled_from(["1", "-0", ".5", "1e-3", "nan", "x", "1.2.3", "", "7e-46", "1" * 25, "0.1e400"]),
)
LINE = st.one_of(
    st.tuples(st.text(st.characters(blacklist_characters="\n\r ", blacklist_categories=("Cs",)), min_size=1,
                      max_size=5), st.lists(FIELD, min_size=3, max_size=3))
    .map(lambda t: (t[0] + " " + " ".join(t[1])).encode()),
    st.sampled_from([b"", b" ", b"a\t1\t2\t3", b"a b 1 2 3", b"a 1 2", b"a 1 2 3 4", b"a 1 2 3  \r", b"\xff 1 2 3"]),
)


@HYPOTHESIS
@given(st.lists(LINE, min_size=1, max_size=30), st.sampled_from(["strict", "replace"]))
def test_kernel_agrees_with_the_python_rules(tmp_path, lines, errors):
    content = b"t 0 1 2\n" + b"\n".join(lines) + b"\n"  # a first row that fixes dim = 3
    opts = text_rows.TextOptions(np.dtype(np.float32), on_bad_row="skip", errors=errors)
    expected_tokens, expected_rows, skipped = reference(content, opts)
    path = tmp_path / "k.txt"
    path.write_bytes(content)
    v = load_vectors(path, on_bad_row="skip", errors=errors, duplicates="last")
    keep = {t: i for i, t in enumerate(expected_tokens)}  # the last row of each token
    order = sorted(keep.values())
    assert tokens(v) == [expected_tokens[i] for i in order]
    np.testing.assert_array_equal(v.matrix, expected_rows[order])
    assert v.metadata.get("skipped_rows", 0) == skipped


def big_file(rows=1500, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((rows, dim)).astype(np.float32)
    words = [f"w{i}" + (" x" if i % 97 == 0 else "") for i in range(rows)]
    text = "".join(f"{w} {' '.join(repr(float(x)) for x in row)}\n" for w, row in zip(words, values))
    return text.encode(), words, values


@pytest.mark.parametrize("compression", [None, "gz", "bz2", "xz"])
def test_many_small_blocks_and_compressed_streams_give_the_same_table(tmp_path, monkeypatch, compression):
    monkeypatch.setattr(text_blocks, "BLOCK_BYTES", 4096)
    content, words, values = big_file()
    compress = {None: lambda b: b, "gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[compression]
    path = tmp_path / ("v.txt" + (f".{compression}" if compression else ""))
    path.write_bytes(compress(content))
    v = load_vectors(path)
    assert tokens(v) == words
    np.testing.assert_array_equal(v.matrix, values)
    assert load_vectors(path, limit=1234).matrix.shape == (1234, 5)
    np.testing.assert_array_equal(load_vectors(path, limit=1234).matrix, values[:1234])


def test_errors_in_later_blocks_name_the_right_line(tmp_path, monkeypatch):
    monkeypatch.setattr(text_blocks, "BLOCK_BYTES", 4096)
    content, words, _ = big_file()
    lines = content.split(b"\n")
    lines[1200] = b"broken 1 2"
    path = tmp_path / "v.txt.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines)))
    with pytest.raises(InputFormatError) as e:
        load_vectors(path)
    assert str(e.value) == f"{path}:1201: token 'broken': expected a token and 5 values, found 3 fields"
    v = load_vectors(path, on_bad_row="skip")
    assert len(v) == 1499 and "broken" not in tokens(v) and v.ids([words[1201]]).tolist() == [1200]


def test_a_line_longer_than_a_block_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(text_blocks, "BLOCK_BYTES", 64)
    row = np.arange(300, dtype=np.float32) / 7
    content = ("long " + " ".join(map(repr, row.tolist())) + "\nshort " + " ".join(["1"] * 300) + "\n").encode()
    v = load(tmp_path, content)
    assert tokens(v) == ["long", "short"]
    np.testing.assert_array_equal(v.matrix[0], row)


def test_truncated_compressed_file_is_an_error(tmp_path):
    content, _, _ = big_file(rows=200)
    path = tmp_path / "v.txt.gz"
    path.write_bytes(gzip.compress(content)[:-30])
    with pytest.raises(InputFormatError, match=r"v\.txt\.gz: cannot decompress"):
        load_vectors(path)


# --------------------------------------------------------------------------------------------------------------
# word2vec binary


def binary(words, values, newline=True, header=None) -> bytes:
    out = (header or f"{len(words)} {values.shape[1]}\n").encode()
    for word, row in zip(words, values):
        out += (word if isinstance(word, bytes) else word.encode()) + b" " + struct.pack(f"<{len(row)}f", *row) + (b"\n" if newline else b"")
    return out


@pytest.mark.parametrize("newline", [True, False])
def test_word2vec_binary_reads_with_or_without_newlines(tmp_path, newline):
    values = np.array([[1.5, -2, 3], [0.1, 1e-40, np.pi], [10, 20, 30]], np.float32)
    v = load(tmp_path, binary(["a", "ünï", "c"], values, newline), name="v.bin")
    assert tokens(v) == ["a", "ünï", "c"]
    np.testing.assert_array_equal(v.matrix, values)


def test_word2vec_binary_found_without_a_suffix(tmp_path):
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    v = load(tmp_path, binary(["a", "b", "c"], values), name="vectors")
    assert v.metadata["source_format"] == "word2vec-binary"
    np.testing.assert_array_equal(v.matrix, values)


def test_truncated_word2vec_binary_is_an_error(tmp_path):
    values = np.ones((3, 4), np.float32)
    content = binary(["a", "bee", "c"], values)
    assert error(tmp_path, content[:-10], name="v.bin") == (
        "v.bin: truncated: the header says 3 rows but the file holds 2, and ends inside the row of token 'c'"
    )
    assert error(tmp_path, content[: content.index(b"bee")], name="v.bin") == (
        "v.bin: truncated: the header says 3 rows but the file holds 1"
    )


def test_word2vec_binary_without_a_header_is_an_error(tmp_path):
    assert error(tmp_path, b"a \x00\x00\x80?", name="v.bin") == (
        "v.bin:1: not a word2vec binary file: the first line should be 'rows dim'"
    )


def test_word2vec_binary_limit_compression_and_invalid_utf8(tmp_path, monkeypatch):
    monkeypatch.setattr(text_blocks, "BLOCK_BYTES", 256)
    rng = np.random.default_rng(1)
    values = rng.standard_normal((300, 8)).astype(np.float32)
    words = [f"w{i}" for i in range(300)]
    path = tmp_path / "v.bin.gz"
    path.write_bytes(gzip.compress(binary(words, values)))
    v = load_vectors(path)
    assert tokens(v) == words
    np.testing.assert_array_equal(v.matrix, values)
    assert len(load_vectors(path, limit=7)) == 7
    words[150] = b"caf\xe9"
    path = tmp_path / "w.bin"
    path.write_bytes(binary(words, values))
    with pytest.raises(InputFormatError) as e:
        load_vectors(path)
    assert str(e.value) == (f"{path}: row 150: token b'caf\\xe9' is not valid utf-8: byte 0xe9 at position 3 "
                            "(use --errors replace or --errors ignore, or --encoding)")
    assert tokens(load_vectors(path, errors="replace"))[150] == "caf\ufffd"


# --------------------------------------------------------------------------------------------------------------
# Writers


def test_text_is_written_with_the_shortest_exact_digits(tmp_path):
    v = Vectors(np.array([[0.1, 1e-5, 123456789, -0.0]], np.float32), ["a b"])
    save_vectors(v, tmp_path / "v.txt")
    assert (tmp_path / "v.txt").read_bytes() == b"a b 0.1 0.00001 123456790 -0\n"
    save_vectors(v, tmp_path / "v.vec")
    assert (tmp_path / "v.vec").read_bytes() == b"1 4\na b 0.1 0.00001 123456790 -0\n"


@pytest.mark.parametrize("bad", ["", " a", "a ", "a  b", "a\nb", "a\rb"])
def test_tokens_that_would_not_read_back_are_refused(tmp_path, bad):
    with pytest.raises(Exception) as e:
        save_vectors(Vectors(np.ones((2, 2), np.float32), ["ok", bad]), tmp_path / "v.txt")
    assert str(e.value) == f"token {bad!r} (row 1) cannot be written as GloVe text"
    assert not (tmp_path / "v.txt").exists()


def test_word2vec_binary_refuses_tokens_with_spaces(tmp_path):
    with pytest.raises(Exception, match=r"token 'a b' \(row 0\) cannot be written as word2vec binary"):
        save_vectors(Vectors(np.ones((1, 2), np.float32), ["a b"]), tmp_path / "v.bin")


def test_word2vec_binary_refuses_values_beyond_float32(tmp_path):
    with pytest.raises(Exception) as e:
        save_vectors(Vectors(np.array([[1, 2], [3, 1e300]]), ["a", "b"]), tmp_path / "v.bin")
    assert str(e.value) == "value 1e+300 (row 1) is too large for word2vec binary, which holds float32"
    assert not (tmp_path / "v.bin").exists()


def test_word2vec_binary_bytes(tmp_path):
    save_vectors(Vectors(np.array([[1, 2]], np.float64), ["é"]), tmp_path / "v.bin")
    assert (tmp_path / "v.bin").read_bytes() == b"1 2\n\xc3\xa9 " + struct.pack("<2f", 1, 2) + b"\n"


UNICODE_TOKEN = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\ufeff"), min_size=1, max_size=12
).map(lambda t: " ".join(part for part in t.split(" ") if part)).filter(bool)


def glove_safe(token: str) -> bool:
    """GloVe text has no header: a token whose last word is a number would shift the dimension (word2vec's header
    fixes it)."""
    return " " not in token or not text_numbers.NUMBER.fullmatch(token.rsplit(" ", 1)[1].encode("utf-8", "replace"))


@HYPOTHESIS
@given(st.lists(UNICODE_TOKEN, min_size=1, max_size=8, unique=True), st.integers(2, 5),
       st.sampled_from(["v.txt", "v.vec", "v.vec.gz"]), st.sampled_from([np.float16, np.float32, np.float64]))
def test_random_unicode_tokens_with_spaces_round_trip_through_text(tmp_path, words, dim, name, dtype):
    if name == "v.txt" and not all(glove_safe(w) for w in words):
        words = [w for w in words if glove_safe(w)] or ["plain"]
    rng = np.random.default_rng(len(words))
    values = rng.standard_normal((len(words), dim)).astype(dtype)
    save_vectors(Vectors(values, words), tmp_path / name)
    v = load_vectors(tmp_path / name, dtype=dtype)
    assert tokens(v) == words
    np.testing.assert_array_equal(v.matrix, values)
