"""fastText ``.bin`` models: the dictionary parsed, the input matrix memory-mapped, subword vectors as fastText.

The layout (fastText's src/fasttext.cc ``loadModel``, args.cc ``load``, dictionary.cc ``load``, densematrix.cc
``load``), all little-endian: magic 793712314 and version (int32 each, version <= 12); the arguments (12 int32:
dim, ws, epoch, minCount, neg, wordNgrams, loss, model, bucket, minn, maxn, lrUpdateRate; a float64 t); the
dictionary (int32 size, nwords, nlabels; int64 ntokens, pruneidx_size; ``size`` entries of a NUL-terminated word,
an int64 count and an int8 type; ``pruneidx_size`` pairs of int32); a bool saying whether the input matrix is
quantized; the input matrix (int64 rows, int64 cols, rows x cols float32). Rows ``0..nwords-1`` are the words,
rows ``nwords..nwords+bucket-1`` the hashed character n-grams. The output matrix follows and is not needed.

A quantized model (``.ftz``, quantmatrix.cc and productquantizer.cc) holds instead: a bool qnorm, int64 rows and
cols, an int32 code size and the codes (``nsubq`` bytes per row); the product quantizer (int32 dim, nsubq, dsub,
lastdsub; dim x 256 float32 centroids); with qnorm, a byte per row and a one-dimensional quantizer of the row norms.
Row ``i`` is, for each sub-quantizer ``m``, the centroid its code picks, times its norm's centroid with qnorm. Its
dictionary is usually pruned: ``pruneidx`` maps the n-gram buckets kept to rows ``nwords + j``, and an n-gram whose
bucket was not kept adds nothing.

Opening a model reads the dictionary only: the file is memory-mapped and one compiled pass walks the entries, so a
multi-GB model opens in the time its dictionary takes, and the matrix is a read-only ``np.memmap``, never copied.
Every count, length and offset is checked against the file's size before use (the files are untrusted).

Pruned unquantized models are refused, as fastText refuses them.

A word's vector (fastText's ``getWordVector``): the word is wrapped as ``<word>``; its character n-grams of
``minn..maxn`` characters (an n-gram starts only at a byte that is not a UTF-8 continuation byte; the n-grams
``<`` and ``>`` of one character are skipped) are hashed with 32-bit FNV-1a over the bytes sign-extended, into row
``nwords + h % bucket``. A word in the vocabulary is the mean of its own row and its n-gram rows, any other word the
mean of its n-gram rows, or zeros if it has none; ``</s>`` has no n-grams. The sum runs in float32 in that order and
is scaled by ``float32(1 / count)``, as fastText does (a quantized row adds ``norm * centroid`` element by element,
a product then a sum, as fastText's ``addcode``), so the vectors are fastText's bit for bit.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ..arrays import as_strings, string_buffers
from ..errors import InputFormatError, in_file
from .base import LoadOptions, ReadResult, WeightFormat

if TYPE_CHECKING:  # vocab imports numba, which the registry must not load
    from ..vocab import TokenIndex

MAGIC = 793712314
VERSION = 12  # the newest file version fastText writes; older ones (11) read the same
_ARGS = struct.Struct("<12id")  # dim ws epoch minCount neg wordNgrams loss model bucket minn maxn lrUpdateRate t
_DICT = struct.Struct("<3i2q")  # size nwords nlabels ntokens pruneidx_size
_MATRIX = struct.Struct("<?2q")  # quantized, rows, cols
_SUPERVISED = 3



@dataclass(frozen=True, eq=False)
class Quantizer:
    """A quantized model's input matrix (``.ftz``), memory-mapped, and its pruned n-gram buckets."""

    codes: np.ndarray  # uint8 [rows, nsubq]
    centroids: np.ndarray  # float32 [dim * 256]
    nsubq: int
    dsub: int
    lastdsub: int
    norm_codes: np.ndarray  # uint8 [rows], empty without qnorm
    norm_centroids: np.ndarray  # float32 [256], empty without qnorm
    kept: np.ndarray  # int64, sorted: the n-gram buckets kept by pruning
    kept_rows: np.ndarray  # int64: the row (after nwords) of each kept bucket

    def arrays(self) -> tuple:
        return (self.codes, self.centroids, self.nsubq, self.dsub, self.lastdsub, self.norm_codes,
                self.norm_centroids, self.kept, self.kept_rows)


_BLOCK = 1 << 16  # words hashed and summed at a time: their rows take about 40 MB


@dataclass(frozen=True, eq=False)
class FastTextModel:
    """An opened fastText ``.bin``: arguments, dictionary and the memory-mapped input matrix."""

    path: Path
    version: int
    dim: int
    minn: int
    maxn: int
    bucket: int
    nwords: int
    model: int  # 1 cbow, 2 skipgram, 3 supervised
    entries: pa.Array  # every dictionary entry: the nwords words, then the labels
    counts: np.ndarray  # int64, one per entry
    matrix: np.ndarray  # float32 [nwords + bucket, dim], a read-only memory map; empty [0, dim] when quantized
    quantizer: Quantizer | None  # a quantized model's matrix (.ftz)
    pruned: bool  # only the n-gram buckets in quantizer.kept have rows (.ftz)

    @property
    def tokens(self) -> pa.Array:
        """The vocabulary (the words, labels excluded), row ``i`` of ``matrix`` for token ``i``."""
        return self.entries.slice(0, self.nwords)

    @cached_property
    def _index(self) -> tuple[TokenIndex, np.ndarray]:
        from ..vocab import TokenIndex

        index = TokenIndex(self.tokens)
        rows = np.arange(self.nwords)
        last = rows
        if np.any(index.first != rows):  # fastText's word2int keeps the last entry of a repeated word
            last = np.full(self.nwords, -1, np.int64)
            np.maximum.at(last, index.first, rows)
        return index, last

    def word_ids(self, words) -> np.ndarray:
        """The vocabulary row of each word (int64), -1 for a word not in the vocabulary."""
        index, last = self._index
        ids = index.lookup(words)
        return np.where(ids >= 0, last[np.maximum(ids, 0)], -1)

    def word_vectors(self, words, ids: np.ndarray | None = None) -> np.ndarray:
        """float32 [len(words), dim]: fastText's ``get_word_vector`` of each word, computed in parallel.

        ``ids`` (from ``word_ids``) saves the vocabulary lookup when the caller has it; a null word is the empty
        word. A supervised model's labels are not words here: a label gets its n-grams' mean (fastText would add the
        row numbered like the label, which is an n-gram's).
        """
        words = as_strings(words)
        if words.null_count:
            words = words.fill_null("")
        if ids is None:
            ids = self.word_ids(words)
        offsets, data = string_buffers(words)
        out = np.empty((len(words), self.dim), np.float32)
        if not len(words):
            return out
        offsets, ids = offsets.astype(np.int64, copy=False), np.asarray(ids, np.int64)
        chars = np.diff(offsets) + 2  # bytes of <word>
        room = 1 + chars * np.minimum(chars, max(self.maxn, 0))  # its own row + an n-gram per start and length
        if self.quantizer is not None:
            from .fasttext_kernels import quantized_vectors

            quantized_vectors(self.quantizer.arrays(), offsets, data, ids, self.nwords, max(self.bucket, 1), self.minn,
                              self.maxn, self.pruned, int(room.max()), out)
            return out
        for first in range(0, len(words), _BLOCK):
            last = min(len(words), first + _BLOCK)
            self._summed_by_bags(offsets[first : last + 1], data, ids[first:last], room[first:last], out[first:last])
        return out

    def _summed_by_bags(self, offsets, data, ids, room, out) -> None:
        """``word_vectors`` of a dense model: the words' rows hashed in parallel, then summed by ``embedding_bag``'s
        kernel, which reads random rows at the memory's pace and sums a bag of at most ``WHOLE_BAG`` entries in one
        pass in entry order (fastText's float32 order), then scaled by ``float32(1 / count)`` as fastText does. A
        block holding a longer word is summed by ``small.embedding_bag``, which folds every bag in entry order."""
        from .. import small
        from ..bag import WHOLE_BAG, embedding_bag
        from .fasttext_kernels import packed_rows, word_rows

        starts = np.zeros(len(ids) + 1, np.int64)
        np.cumsum(room, out=starts[1:])
        flat, counts = np.empty(starts[-1], np.int64), np.empty(len(ids), np.int64)
        word_rows(offsets, data, ids, self.nwords, max(self.bucket, 1), self.minn, self.maxn, starts, flat, counts)
        bounds = np.zeros(len(ids) + 1, np.int64)
        np.cumsum(counts, out=bounds[1:])
        packed = np.empty(bounds[-1], np.int64)
        packed_rows(flat, starts, counts, bounds, packed)
        pool = embedding_bag if counts.max() <= WHOLE_BAG else small.embedding_bag
        pool(packed, self.matrix, bounds, mode="sum", include_last_offset=True, out=out)
        scale = (1.0 / np.maximum(counts, 1)).astype(np.float32)  # fastText's float(1.0 / count), in double first
        scale[counts == 0] = 0
        out *= scale[:, None]

    def vocabulary_vectors(self) -> np.ndarray:
        """float32 [nwords, dim]: the vector of every word of the vocabulary, what fastText's ``.vec`` holds."""
        return self.word_vectors(self.tokens, np.arange(self.nwords))


def is_fasttext_bin(path) -> bool:
    """Whether the file starts with fastText's magic number (for format detection; reads four bytes)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return len(head) == 4 and struct.unpack("<i", head)[0] == MAGIC


def _fail(what: str, value) -> InputFormatError:
    return InputFormatError(f"not a readable fastText .bin model: {what} {value}")


def load_fasttext_bin(path) -> FastTextModel:
    """Open a fastText ``.bin``: parse its arguments and dictionary and memory-map the input matrix."""
    path = Path(path)
    with in_file(path):
        try:
            size = os.path.getsize(path)
            buf = np.memmap(path, np.uint8, "r") if size else np.zeros(0, np.uint8)
        except OSError as e:
            raise InputFormatError(f"cannot read it ({e.strerror or e})") from None
        return _parse(path, buf, size)


def _parse(path: Path, buf: np.ndarray, size: int) -> FastTextModel:
    head = 8 + _ARGS.size + _DICT.size
    if size < 8 or struct.unpack_from("<i", buf, 0)[0] != MAGIC:
        raise InputFormatError("not a fastText .bin model (its first four bytes are not fastText's magic number)")
    if size < head:
        raise _fail("it ends inside its header, at byte", size)
    version = struct.unpack_from("<i", buf, 4)[0]
    if not 0 < version <= VERSION:
        raise _fail("file format version", version)
    dim, _ws, _epoch, _min_count, _neg, _word_ngrams, _loss, model, bucket, minn, maxn, _lr, _t = _ARGS.unpack_from(
        buf, 8
    )
    if version == 11 and model == _SUPERVISED:
        maxn = 0  # as fastText: old supervised models have no character n-grams
    nentries, nwords, nlabels, _ntokens, prune_size = _DICT.unpack_from(buf, 8 + _ARGS.size)
    for name, value, ok in (
        ("dim", dim, 0 < dim <= size // 4),  # a vector must fit in the file
        ("bucket", bucket, bucket >= 0 and (bucket > 0 or maxn <= 0)),
        ("minn", minn, minn >= 0),
        ("maxn", maxn, maxn >= 0),
        ("dictionary size", nentries, 0 <= nentries <= (size - head) // 10),
        ("word count", nwords, 0 <= nwords <= nentries),
        ("label count", nlabels, nlabels == nentries - nwords),
    ):
        if not ok:
            raise _fail(name, value)
    from .fasttext_kernels import gather_words, scan_entries

    starts, ends, pos = scan_entries(buf, head, nentries)
    if pos < 0:
        raise _fail("it ends inside dictionary entry", -pos)
    kept = kept_rows = np.zeros(0, np.int64)
    if prune_size != -1:
        if prune_size < 0 or pos + 8 * prune_size > size:
            raise _fail("pruned n-gram count", prune_size)
        kept, kept_rows = _pruned(buf[pos : pos + 8 * prune_size], bucket, prune_size)
        pos += 8 * prune_size
    if pos + 1 > size:
        raise _fail("it ends before its input matrix, at byte", size)
    quantizer = None
    if buf[pos]:
        rows = nwords + (bucket if prune_size == -1 else prune_size)
        quantizer = _quantizer(buf, pos + 1, size, dim, rows, kept, kept_rows)
        matrix = np.zeros((0, dim), np.float32)
    else:
        if prune_size != -1:
            raise _fail("pruned dictionary without quantization (fastText refuses these too), pruned n-grams:",
                        prune_size)
        matrix = _dense(path, buf, pos, size, dim, nwords + bucket)

    lengths = ends - starts
    offsets = np.empty(nentries + 1, np.int64)
    data = np.empty(int(lengths.sum()), np.uint8)
    counts = np.empty(nentries, np.int64)
    types = np.empty(nentries, np.int8)
    gather_words(buf, starts, ends, offsets, data, counts, types)
    entries = pa.LargeStringArray.from_buffers(nentries, pa.py_buffer(offsets), pa.py_buffer(data))
    try:
        entries.validate(full=True)
    except pa.ArrowInvalid:
        bad = next(i for i in range(nentries) if not _utf8(data[offsets[i] : offsets[i + 1]]))
        raise _fail("dictionary entry that is not UTF-8, number", bad + 1) from None
    if np.any(types[:nwords] != 0) or np.any(types[nwords:] != 1):
        raise _fail("entry types out of order (words then labels), first bad entry", _first_bad(types, nwords) + 1)
    return FastTextModel(path, version, dim, minn, maxn, bucket, nwords, model, entries, counts, matrix, quantizer,
                         prune_size != -1)


def _dense(path: Path, buf: np.ndarray, pos: int, size: int, dim: int, expected_rows: int) -> np.ndarray:
    if pos + _MATRIX.size > size:
        raise _fail("it ends before its input matrix, at byte", size)
    _, rows, cols = _MATRIX.unpack_from(buf, pos)
    if cols != dim:
        raise _fail("input matrix columns", cols)
    if rows != expected_rows:
        raise _fail("input matrix rows", rows)
    start = pos + _MATRIX.size
    if start + rows * cols * 4 > size:
        raise _fail("it ends inside its input matrix: rows", rows)
    if rows * cols == 0:
        return np.zeros((rows, cols), np.float32)
    return np.memmap(path, np.float32, "r", offset=start, shape=(rows, cols))


def _pruned(raw: np.ndarray, bucket: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The kept buckets (sorted) and their rows from ``pruneidx``'s pairs; a repeated bucket keeps its last pair."""
    pairs = raw.view("<i4").reshape(-1, 2).astype(np.int64)
    bad = np.flatnonzero((pairs[:, 0] < 0) | (pairs[:, 0] >= bucket) | (pairs[:, 1] < 0) | (pairs[:, 1] >= count))
    if len(bad):
        raise _fail("pruned n-gram pair", f"{bad[0] + 1} ({pairs[bad[0], 0]}, {pairs[bad[0], 1]})")
    order = np.argsort(pairs[:, 0], kind="stable")
    keys, rows = pairs[order, 0], pairs[order, 1]
    last = np.append(keys[1:] != keys[:-1], True) if len(keys) else np.zeros(0, bool)
    return keys[last], rows[last]


def _quantizer(buf, pos: int, size: int, dim: int, expected_rows: int, kept, kept_rows) -> Quantizer:
    """Read a QuantMatrix at ``pos`` (after its quantized flag), checking every size against the file."""

    def need(end, what, value):
        if end > size:
            raise _fail(f"it ends inside its quantized matrix ({what})", value)

    need(pos + 21, "header, at byte", size)
    qnorm, rows, cols, codesize = struct.unpack_from("<?2qi", buf, pos)
    if cols != dim:
        raise _fail("quantized matrix columns", cols)
    if rows != expected_rows:
        raise _fail("quantized matrix rows", rows)
    pos += 21
    need(pos + max(codesize, 0), "codes", codesize)
    codes_at = pos
    pos += max(codesize, 0)
    centroids, pos, (qdim, nsubq, dsub, lastdsub) = _product_quantizer(buf, pos, need)
    if qdim != dim or not (dsub >= 1 and 1 <= lastdsub <= dsub and nsubq >= 1 and (nsubq - 1) * dsub + lastdsub == dim):
        raise _fail("product quantizer (dim, nsubq, dsub, lastdsub)", (qdim, nsubq, dsub, lastdsub))
    if codesize != rows * nsubq:
        raise _fail("quantized code size", codesize)
    codes = buf[codes_at : codes_at + codesize].reshape(rows, nsubq)
    norm_codes, norm_centroids = np.zeros(0, np.uint8), np.zeros(0, np.float32)
    if qnorm:
        need(pos + rows, "norm codes", rows)
        norm_codes = buf[pos : pos + rows]
        norm_centroids, pos, shape = _product_quantizer(buf, pos + rows, need)
        if shape != (1, 1, 1, 1):
            raise _fail("norm quantizer (dim, nsubq, dsub, lastdsub)", shape)
    return Quantizer(codes, centroids, nsubq, dsub, lastdsub, norm_codes, norm_centroids, kept, kept_rows)


def _product_quantizer(buf: np.ndarray, pos: int, need) -> tuple[np.ndarray, int, tuple]:
    """A ProductQuantizer's centroids (a float32 view), the position after it, and (dim, nsubq, dsub, lastdsub)."""
    need(pos + 16, "product quantizer", pos)
    shape = struct.unpack_from("<4i", buf, pos)
    if shape[0] < 1:
        raise _fail("product quantizer dim", shape[0])
    end = pos + 16 + 4 * 256 * shape[0]
    need(end, "centroids of dim", shape[0])
    return buf[pos + 16 : end].view("<f4"), end, shape


def _utf8(raw: np.ndarray) -> bool:
    try:
        raw.tobytes().decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _first_bad(types: np.ndarray, nwords: int) -> int:
    expected = (np.arange(len(types)) >= nwords).astype(np.int8)
    return int(np.flatnonzero(types != expected)[0])


def _read(path, compression: str | None, options: LoadOptions) -> ReadResult:
    """The model, its vocabulary as the tokens; the matrix (the words' vectors) is left to ``Vectors``."""
    model = load_fasttext_bin(path)
    return ReadResult(None, model.tokens, model=model)


# Found by its magic number only: .bin is word2vec binary's suffix too; .ftz is a quantized model's.
FORMAT = WeightFormat("fasttext-bin", (".ftz",), _read, None,
                      signature=lambda path, head: len(head) >= 4 and struct.unpack("<i", head[:4])[0] == MAGIC)
