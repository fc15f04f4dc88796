"""Static embedding models with a tokenizer: model2vec directories and sentence-transformers ``StaticEmbedding``.

A directory holds ``model.safetensors`` (tensor ``embeddings`` [V, d], or ``embedding.weight`` as
sentence-transformers writes it; optional ``weights`` [V] and ``mapping`` [V]), ``tokenizer.json`` and
``config.json`` (or ``config_sentence_transformers.json``), itself or in ``0_StaticEmbedding/``.

``encode`` is model2vec 0.10's ``StaticModel.encode``, step for step: each text is cut to ``max_length *
median_token_length`` characters, tokenized without special tokens and truncated to ``max_length`` tokens (512
unless config.json says otherwise; None: no truncation), the unknown token's id dropped (the model's ``unk_token``,
or a Unigram model's ``unk_id``), the ids mapped through ``mapping`` and the rows scaled by ``weights``, the rows
averaged (zeros for no tokens) and, when config.json says ``normalize``, divided by ``norm + 1e-32`` in float32.

The pooling is ``embedding_bag(mode="mean")`` over the table ``table``, one row per token id: the stored matrix
itself (memory-mapped) when there is no mapping or weights, otherwise ``embeddings[mapping] * weights`` made once at
load, in the dtype NumPy gives that product (float32 for float16 or int8 rows and float32 weights), which is the
product model2vec computes per token. An int8 table is widened to float32 (exactly), since model2vec averages int8
rows as floats. The result has model2vec's dtype: the stored one, float32 for int8.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrays import as_strings
from ..errors import InputFormatError, InvalidArgumentError, in_file
from ..text_tokenizers import encode_ids_with, load_tokenizer
from .base import LoadOptions, ReadResult, WeightFormat
from .safetensors import safetensors_header

DEFAULT_MAX_LENGTH = 512
_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I8": np.int8, "I16": np.int16, "I32": np.int32,
           "I64": np.int64, "U8": np.uint8, "U16": np.uint16, "U32": np.uint32, "U64": np.uint64}
_LAYOUTS = (  # (tensor file, tokenizer), in model2vec's order
    ("model.safetensors", "tokenizer.json"),
    ("0_StaticEmbedding/model.safetensors", "0_StaticEmbedding/tokenizer.json"),
)
_CONFIGS = ("config.json", "config_sentence_transformers.json")  # the first one present
_UNSET = object()


def is_model_directory(path) -> bool:
    """Whether ``path`` is a directory holding a static model's tensor file and tokenizer."""
    path = Path(path)
    return path.is_dir() and any((path / t).is_file() and (path / k).is_file() for t, k in _LAYOUTS)


@dataclass(eq=False)
class StaticModel:
    """An opened static model: the tokenizer, the table ``embedding_bag`` pools, and model2vec's settings.

    ``tokenize`` sets the tokenizer's truncation for each call, so one model serves one thread at a time.
    """

    path: Path
    tokenizer: object  # tokenizers.Tokenizer
    table: np.ndarray  # [vocabulary size, d] float16/32/64: the row of each token id, mapped and weighted
    dtype: np.dtype  # of encode's result
    normalize: bool
    max_length: int | None
    unk_id: int | None
    median_token_length: int
    tokens: pa.Array  # the vocabulary, token i for id i

    def tokenize(self, texts, max_length=_UNSET, known: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """model2vec's token ids of each text, unknown tokens dropped: (int64 ids, int64 offsets, one per text + 1).

        ``known``: a dict the caller keeps across the calls of one run (with one ``max_length``), so that each
        distinct word is tokenized once, not once per batch; bounded (``text_tokenizers.KNOWN_WORDS``)."""
        max_length = self.max_length if max_length is _UNSET else max_length
        return self._tokenize(_texts(texts), max_length, {} if known is None else known)

    def _tokenize(self, texts: list[str], max_length: int | None, known: dict) -> tuple[np.ndarray, np.ndarray]:
        """``tokenize``; ``known`` is ``encode_ids_with``'s, for one ``max_length``."""
        if max_length is None:
            self.tokenizer.no_truncation()
        else:
            cut = max_length * self.median_token_length
            texts = [t[:cut] for t in texts]
            self.tokenizer.enable_truncation(max_length)
        ids, offsets = encode_ids_with(self.tokenizer, texts, known)
        if self.unk_id is not None:
            keep = ids != self.unk_id
            if not keep.all():
                kept = np.zeros(len(ids) + 1, np.int64)  # kept[k]: the ids kept before id k
                np.cumsum(keep, out=kept[1:])
                ids, offsets = ids[keep], kept[offsets]
        return ids, offsets

    def encode(self, texts, *, normalize: bool | None = None, max_length=_UNSET, batch_size: int = 8192) -> np.ndarray:
        """model2vec's ``StaticModel.encode``: one vector per text, [len(texts), d] in ``self.dtype``."""
        from ..bag import embedding_bag  # numba loads here, not when the format registry is imported

        texts = _texts(texts)
        normalize = self.normalize if normalize is None else normalize
        max_length = self.max_length if max_length is _UNSET else max_length
        out = np.empty((len(texts), self.table.shape[1]), self.dtype)
        known = {}  # each distinct word is tokenized once across the batches
        for start in range(0, len(texts), batch_size):
            ids, offsets = self._tokenize(texts[start : start + batch_size], max_length, known)
            pooled = embedding_bag(ids, self.table, offsets, include_last_offset=True, mode="mean")
            pooled = pooled.astype(self.dtype, copy=False)  # model2vec rounds the mean to its dtype first
            if normalize:  # model2vec's own expression, so that the float32 norm rounds the same
                pooled = pooled.astype(np.float32)
                pooled = pooled / (np.linalg.norm(pooled, axis=1, keepdims=True) + 1e-32)
            out[start : start + len(pooled)] = pooled
        return out


def _texts(texts) -> list[str]:
    """The texts as a list of str (from any sequence of str or Arrow strings); a null is the empty text."""
    return ["" if t is None else t for t in as_strings(texts).to_pylist()]


def load_static_model(path, *, normalize: bool | None = None, max_length=_UNSET) -> StaticModel:
    """Open a model2vec or sentence-transformers static model directory; ``normalize``/``max_length`` override
    config.json's."""
    path = Path(path)
    layout = next(((path / t, path / k) for t, k in _LAYOUTS if (path / t).is_file() and (path / k).is_file()), None)
    if layout is None:
        raise InputFormatError(f"{path}: not a static model directory (no model.safetensors with tokenizer.json, "
                               "in it or in 0_StaticEmbedding/)")
    tensor_file, tokenizer_file = layout
    config_file = next((path / c for c in _CONFIGS if (path / c).is_file()), None)
    config = {}
    if config_file is not None:
        with in_file(config_file):
            try:
                config = json.loads(config_file.read_text("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise InputFormatError(f"not valid JSON ({e})") from None
            if not isinstance(config, dict):
                raise InputFormatError("not a JSON object")
    tokenizer = load_tokenizer(tokenizer_file)
    vocab = tokenizer.get_vocab()
    tokens = pa.array([t for t, _ in sorted(vocab.items(), key=lambda item: item[1])], pa.string())
    with in_file(tensor_file):
        tensors = _tensors(tensor_file)
        name = "embeddings" if "embeddings" in tensors else "embedding.weight"
        embeddings = _tensor(tensor_file, tensors, name, 2, "FI")
        weights = _tensor(tensor_file, tensors, "weights", 1, "F") if "weights" in tensors else None
        mapping = _tensor(tensor_file, tensors, "mapping", 1, "IU") if "mapping" in tensors else None
        table = _table(embeddings, weights, mapping, len(tokens))
    with in_file(config_file or path):
        normalize = _setting(config, "normalize", bool, False) if normalize is None else bool(normalize)
        if max_length is _UNSET:
            max_length = _setting(config, "max_length", int, DEFAULT_MAX_LENGTH)
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1):
        raise InvalidArgumentError(f"max_length must be an integer of 1 or more, or None; got {max_length!r}")
    return StaticModel(
        path=path,
        tokenizer=tokenizer,
        table=table,
        dtype=np.dtype(np.float32 if embeddings.dtype == np.int8 else embeddings.dtype),
        normalize=normalize,
        max_length=max_length,
        unk_id=_unk_id(tokenizer),
        median_token_length=int(np.median(pc.utf8_length(tokens).to_numpy())) if len(tokens) else 0,
        tokens=tokens,
    )


def _setting(config: dict, key: str, kind: type, default):
    value = config.get(key, default)
    if value is not None and (type(value) is not kind):
        raise InputFormatError(f"{key} is {value!r}, expected {'true or false' if kind is bool else 'an integer'}")
    if kind is int and value is not None and value < 1:
        raise InputFormatError(f"{key} is {value}, expected 1 or more")
    return value


def _unk_id(tokenizer) -> int | None:
    """The unknown token's id, as model2vec finds it: the model's ``unk_token``, or a Unigram model's ``unk_id``."""
    model = tokenizer.model
    if hasattr(model, "unk_token"):
        return None if model.unk_token is None else tokenizer.token_to_id(model.unk_token)
    return json.loads(tokenizer.to_str())["model"].get("unk_id")


def _tensors(path: Path) -> dict:
    """Each tensor's dtype, shape and offset in the file (``safetensors_header`` has checked shapes and offsets)."""
    header, start = safetensors_header(path)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise InputFormatError(f"tensor {name!r} is {info['dtype']}; expected one of {', '.join(_DTYPES)}")
        tensors[name] = (np.dtype(_DTYPES[info["dtype"]]), tuple(info["shape"]), start + info["data_offsets"][0])
    return tensors


def _tensor(path: Path, tensors: dict, name: str, ndim: int, kinds: str) -> np.ndarray:
    if name not in tensors:
        raise InputFormatError(f"no tensor 'embeddings' or 'embedding.weight' (it has: {', '.join(list(tensors))})")
    dtype, shape, offset = tensors[name]
    if len(shape) != ndim or dtype.kind.upper() not in kinds:
        raise InputFormatError(f"tensor {name!r} is {dtype} of shape {list(shape)}, which a static model cannot be")
    if 0 in shape:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype, "r", offset=offset, shape=shape)


def _table(embeddings, weights, mapping, vocab_size: int) -> np.ndarray:
    """The row of each token id: ``embeddings[mapping] * weights[:, None]`` as model2vec computes it per token."""
    rows = len(embeddings)
    for name, array in (("weights", weights), ("mapping", mapping)):
        if array is not None and len(array) != vocab_size:
            raise InputFormatError(f"tensor {name!r} has {len(array)} entries for {vocab_size} tokens")
    if mapping is None and rows != vocab_size:
        raise InputFormatError(f"tensor of {rows} rows for a tokenizer of {vocab_size} tokens")
    if mapping is not None:
        bad = np.flatnonzero((mapping < 0) | (mapping >= rows))
        if len(bad):
            raise InputFormatError(f"mapping[{bad[0]}] is {mapping[bad[0]]}, outside the {rows} rows")
        embeddings = embeddings[np.asarray(mapping)]
    if weights is not None:
        embeddings = embeddings * np.asarray(weights)[:, None]
    if embeddings.dtype.kind != "f":
        embeddings = embeddings.astype(np.float32)
    return embeddings


def _read(path, compression: str | None, options: LoadOptions) -> ReadResult:
    model = load_static_model(path, **options.model)
    return ReadResult(model.table, model.tokens, model=model)


FORMAT = WeightFormat("static-model", (), _read, None, signature=lambda path, head: is_model_directory(path))
