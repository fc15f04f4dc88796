"""The batch pipeline: read an input batch by batch, embed (or pool) it, write Arrow record batches, atomically.

Memory stays bounded by a few batches and the (memory-mapped) weight table, never by the input size. A reader
thread prepares the next batch (parsing, tokenising: pyarrow and the numba parser release the GIL) while the main
thread embeds and writes the current one; the output buffer is reused, since fresh allocations cost page faults.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
import queue
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from . import __version__, core, kernel_cache, small, writers
from .atomic import atomic_path, check_target, is_stream, refuse_aliases
from .device import use_gpu
from .errors import GpuUnavailableError, InputFormatError, InvalidArgumentError, UsageError, in_file
from .progress import progress_bar
from .readers import (Batch, ReadOptions, Source, check_columns, column_batch, column_kind, open_sources,
                      shard_files)
from .formats.static_model import StaticModel
from .vectors import Vectors, load_vectors, weight_files

if TYPE_CHECKING:  # tokens compiles numba kernels: imported only for inputs of tokens
    from .tokens import TokenMapper

BATCH_BYTES = 32 << 20  # output bytes per batch, about
OUTPUT_DTYPES = ("float16", "float32", "float64")


@dataclass
class EmbedOptions:
    """What is computed for each batch: the lookup options, pooling (``mode``), the input column of per-sample
    weights, the output dtype and the Arrow type of the vectors (``fixed`` or ``list``, see writers)."""

    padding_idx: int | None = None
    max_norm: float | None = None
    norm_type: float = 2.0
    mode: str | None = None
    output_dtype: str | None = None
    weights_column: str | None = None
    vector_type: str = "fixed"
    normalize: bool = False  # L2-normalise each pooled vector, as a static model does

    def check(self, weight) -> None:
        """Validate everything before any input is read or output written (``weight``: the table or its Vectors)."""
        core.normalize_padding_idx(self.padding_idx, weight.shape[0])
        core.check_max_norm(self.max_norm, self.norm_type)
        if self.mode is not None and self.mode not in core.BAG_MODES:
            raise InvalidArgumentError(f"unknown mode {self.mode!r}; choose one of {', '.join(core.BAG_MODES)}")
        if self.output_dtype is not None and self.output_dtype not in OUTPUT_DTYPES:
            raise InvalidArgumentError(f"unknown output dtype {self.output_dtype!r}; choose one of {', '.join(OUTPUT_DTYPES)}")
        if self.weights_column is not None and self.mode != "sum":
            raise InvalidArgumentError("--weights-column needs bag --mode sum (per-sample weights scale the rows "
                                       "of a sum, as in torch)")
        if self.vector_type not in writers.VECTOR_TYPES:
            raise InvalidArgumentError(f"unknown vector type {self.vector_type!r}; choose one of "
                                       f"{', '.join(writers.VECTOR_TYPES)}")

    def metadata(self) -> dict:
        found = {"padding_idx": self.padding_idx, "max_norm": self.max_norm, "norm_type": self.norm_type,
                 "vector_type": self.vector_type}
        if self.weights_column is not None:
            found["weights_column"] = self.weights_column
        if self.normalize:
            found["normalize"] = True
        return found if self.mode is None else {**found, "mode": self.mode}


@dataclass
class Summary:
    """What a run did, for the CLI's closing summary."""

    input: str
    output: str
    weight_shape: tuple
    dtype: str
    rows: int = 0
    lookups: int = 0
    seconds: float = 0.0
    input_shape: tuple | None = None
    shards: int = 0
    skipped: int = 0
    oov: str | None = None
    oov_policy: str | None = None
    oov_counts: Counter = field(default_factory=Counter)  # OOV token -> count, in order of first appearance
    notes: list = field(default_factory=list)

    @property
    def lookups_per_second(self) -> float:
        return self.lookups / self.seconds if self.seconds > 0 else float("inf")


class _Buffer:
    """A growable output buffer, reused across batches (each batch is written before the next is embedded)."""

    def __init__(self):
        self._flat = np.empty(0, np.uint8)

    def get(self, shape: tuple, dtype) -> np.ndarray:
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if nbytes > self._flat.nbytes:
            self._flat = np.empty(max(nbytes, self._flat.nbytes * 3 // 2), np.uint8)
        return self._flat[:nbytes].view(dtype).reshape(shape)


def batch_values(batch: Batch, weight: np.ndarray | None, options: EmbedOptions, buffer: _Buffer | None = None):
    """The vectors of one batch on the CPU: ``ids.shape + (D,)`` embedded, or ``(rows, D)`` pooled. A batch with
    its own table (a fastText model's words) is looked up in it (``weight`` may then be None)."""
    if batch.table is not None:
        weight, options = batch.table, dataclasses.replace(options, padding_idx=batch.padding_idx)
    if small.takes(batch.ids, weight, options.max_norm):  # a few rows: NumPy, and numba never loads
        from .small import embedding, embedding_bag
    else:
        from .bag import embedding_bag
        from .gather import embedding

    buffer = buffer or _Buffer()
    dim = weight.shape[1]
    if options.mode is None:
        shape = batch.ids.shape + (dim,)
        return embedding(batch.ids, weight, options.padding_idx, options.max_norm, options.norm_type,
                         out=buffer.get(shape, weight.dtype), where=batch.where)
    ids = batch.ids if batch.offsets is not None else batch.ids.reshape(batch.ids.shape[0], -1)
    psw = None if batch.weights is None else batch.weights.reshape(ids.shape)
    return embedding_bag(ids, weight, batch.offsets, options.mode, psw, padding_idx=options.padding_idx,
                         include_last_offset=batch.offsets is not None, max_norm=options.max_norm,
                         norm_type=options.norm_type, out=buffer.get((batch.rows, dim), weight.dtype.newbyteorder("=")),
                         where=batch.where)


def batch_column(batch: Batch, values: np.ndarray, options: EmbedOptions) -> pa.Array:
    """The output column of a batch from its vectors: OOV zeros, the output dtype, the Arrow layout."""
    if batch.zero is not None and batch.zero.size:
        values.reshape(-1, values.shape[-1])[batch.zero] = 0
    if options.normalize:  # model2vec's: the mean rounded to its dtype, then x / (norm + 1e-32) in float32
        values = np.asarray(values, options.output_dtype or values.dtype).astype(np.float32)
        values = values / (np.linalg.norm(values, axis=1, keepdims=True) + 1e-32)
    if options.output_dtype is not None and values.dtype != np.dtype(options.output_dtype):
        if options.output_dtype == "float16" and values.size > small.SMALL_WORK:
            from .shared_kernels import to_float16

            values = to_float16(values)
        else:
            with np.errstate(over="ignore"):  # beyond float16's range: inf, as to_float16 gives
                values = values.astype(options.output_dtype)
    if options.mode is None and batch.offsets is not None:
        return writers.ragged_array(values, batch.offsets, options.vector_type)
    return writers.embedding_array(values, options.vector_type)


def embed_batch(batch: Batch, weight: np.ndarray, options: EmbedOptions, buffer: _Buffer | None = None) -> pa.Array:
    """The output column for one batch: its rows embedded (or pooled with ``options.mode``) on the CPU."""
    return batch_column(batch, batch_values(batch, weight, options, buffer), options)


def _column_type(source: Source, weight, options: EmbedOptions) -> pa.DataType:
    dtype = np.dtype(options.output_dtype or weight.dtype)
    dim = weight.shape[1]
    if options.mode is not None:
        return writers.embedding_type(dtype, (dim,), options.vector_type)
    if source.ragged:
        return writers.ragged_type(dtype, dim, options.vector_type)
    return writers.embedding_type(dtype, source.row_shape + (dim,), options.vector_type)


def _prefetch(items, depth: int = 2):
    """Iterate ``items`` in a background thread, ``depth`` items ahead; errors surface in the caller."""
    slots: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((done, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put((None, e))

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()


@contextlib.contextmanager
def num_threads(n: int | None):
    """Run the block with numba limited to ``n`` threads, restoring the previous count after.

    None: all cores but one, which the background writer and the reader thread need. A kernel's threads split its
    work evenly up front, so one that waits for a core stalls the whole kernel: on 2 cores, bench_pipeline's cases
    (at a fifth of their size) ran at 0.49 / 0.44 / 0.73 of the floor with 2 kernel threads, 0.63 / 0.54 / 0.77
    with 1.
    """
    import numba

    previous = numba.get_num_threads()
    n = n or max(1, numba.config.NUMBA_NUM_THREADS - 1)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _write_source(source: Source, vectors: Vectors, weights_name: str, sink, fmt: str, options: EmbedOptions,
                  mapper: TokenMapper | None, device_table, progress, summary: Summary) -> None:
    weight = vectors  # its shape and dtype; a fastText model's batches carry their own tables
    meta = {
        "embedtool.version": __version__,
        "embedtool.weights": weights_name,
        "embedtool.input": source.name,
        "embedtool.weight_shape": list(weight.shape),
        "embedtool.dtype": np.dtype(options.output_dtype or weight.dtype).name,
        **{f"embedtool.{k}": v for k, v in options.metadata().items()},
    }
    if source.input_shape is not None:
        meta["embedtool.input_shape"] = list(source.input_shape)
    if mapper is not None:
        meta["embedtool.oov_policy"] = mapper.policy
    fields = [*source.keep_fields, pa.field("embedding", _column_type(source, weight, options))]
    schema = pa.schema(fields, metadata={k: json.dumps(v) for k, v in meta.items()})
    if mapper is not None:  # count this shard's OOV tokens from zero: its file's totals are its own
        run_tokens, run_counts = mapper.oov_tokens, mapper.counts
        mapper.oov_tokens, mapper.counts = 0, Counter()
    batches = _prefetch(source.batches)  # the reader thread starts mapping tokens here
    if device_table is None:
        buffers = (_Buffer(), _Buffer())  # one being written in the background, one being filled
        table = _table(vectors, mapper)
        pairs = ((b, batch_values(b, table, options, buffers[i % 2])) for i, b in enumerate(batches))
    else:
        pairs = device_table.embed_batches(batches, options.padding_idx, options.max_norm, options.norm_type,
                                           mode=options.mode)
    writer = writers.BatchWriter(sink, schema, fmt)
    with progress_bar(source.name, source.total, source.unit, progress) as bar, in_file(source.name), \
            ThreadPoolExecutor(1) as background:
        writing = None
        for batch, values in pairs:
            record = pa.record_batch([*batch.keep, batch_column(batch, values, options)], schema=schema)
            if writing is not None:
                writing.result()  # the previous batch is written: its buffer may be filled again
            writing = background.submit(writer.write, record,
                                        {"embedtool.oov_tokens": str(batch.oov)} if mapper else None)
            if device_table is not None:  # the GPU reuses its pinned buffer for the next batch
                writing.result()
            summary.rows += batch.rows
            summary.lookups += int(batch.ids.size)
            bar.advance(batch.size)
        if writing is not None:
            writing.result()
    totals = None
    if mapper is not None:
        totals = {"embedtool.oov_tokens": str(mapper.oov_tokens),
                  "embedtool.oov_top": json.dumps(mapper.counts.most_common(20))}
        mapper.oov_tokens, mapper.counts = run_tokens + mapper.oov_tokens, run_counts + mapper.counts
    writer.close(totals)


def embed_path(
    weights,
    input,
    output,
    *,
    mode: str | None = None,
    padding_idx=None,
    max_norm=None,
    norm_type=2.0,
    output_dtype: str | None = None,
    vector_type: str = "fixed",
    input_format: str | None = None,
    column: str | None = None,
    keep=(),
    weights_column: str | None = None,
    tokenizer: str = "space",
    lowercase: bool = False,
    seq_len: int | None = None,
    oov: str | None = None,
    unk_token: str | None = None,
    lowercase_fallback: bool = False,
    batch_rows: int | None = None,
    threads: int | None = None,
    progress: bool | None = None,
    resume: bool = False,
    device: str = "auto",
    weight_options: dict | None = None,
    max_line_bytes: int | None = None,
) -> Summary:
    """Embed (or pool, with ``mode``) every row of ``input`` and write ``output``; the engine of the CLI.

    ``input`` is a file, a directory of shards (``output`` is then a directory of shards, one per input file) or
    ``-`` (stdin); ``output`` is ``.arrow``/``.feather``/``.arrows``/``.parquet`` or ``-`` (an IPC stream on
    stdout). Every output file is written atomically; ``resume`` skips shards whose output already exists.
    ``device``: ``auto`` runs on the GPU when one is usable (the table is copied there once), ``cuda`` insists,
    ``cpu`` never touches CUDA. ``weights_column`` (with ``mode="sum"``) names the Arrow/Parquet column of
    per-sample weights: a number per id, in lists as long as the ids' lists. ``vector_type``: ``fixed`` writes
    ``fixed_size_list`` vectors (``fixed_shape_tensor`` rows), ``list`` plain (nested) lists, for readers such as
    Spark that take no fixed-size types. ``weight_options`` are the keyword arguments of ``load_vectors`` for a
    ``weights`` path (``format``, ``vocab``, ``tensor``, ``encoding``, and a static model's ``normalize`` and
    ``max_length``...). ``tokenizer``: ``space``, ``whitespace``, ``chars``, ``word`` (``lowercase`` first) or the
    path of a tokenizer.json; a static model directory's text is split by its own tokenizer, and a fastText model
    gives OOV tokens their subword vectors (``oov="subword"``, its default).
    """
    weight_options = weight_options or {}
    targets = list(output_plan(weights, input, output, weight_options.get("vocab")))
    vectors = weights if isinstance(weights, Vectors) else load_vectors(weights, **weight_options)
    weight = vectors  # its shape and dtype only: a fastText model's matrix is never computed whole here
    options = _options(vectors, EmbedOptions(padding_idx, max_norm, norm_type, mode, output_dtype, weights_column,
                                             vector_type))
    read = ReadOptions(input_format=input_format, column=column, keep=tuple(keep), weights_column=weights_column,
                       tokenizer=tokenizer, seq_len=seq_len, batch_rows=batch_rows, chunk_bytes=_chunk_bytes(weight),
                       max_ids=max(1, BATCH_BYTES // max(1, weight.shape[1] * weight.dtype.itemsize)),
                       max_line_bytes=max_line_bytes)
    weights_name = Path(str(vectors.metadata.get("source", weights))).name
    if vectors.tokens is not None:
        read.make_mapper = lambda: _mapper(vectors, oov, unk_token, padding_idx, lowercase_fallback, mode,
                                           tokenizer, lowercase)
    else:
        _no_vocabulary_options(weights_name, oov=oov, unk_token=unk_token, lowercase_fallback=lowercase_fallback,
                               lowercase=lowercase)
    summary = Summary(str(input), str(output), tuple(weight.shape), np.dtype(options.output_dtype or weight.dtype).name)
    small_input = _small_input(input, weight)  # on the CPU in NumPy: starting CUDA or numba would take longer
    device_table = _device_table(vectors, "cpu" if device == "auto" and small_input else device, summary)
    kernels = device_table is None and not small_input
    if kernels:
        from . import gather  # noqa: F401 - numba loads before the clock starts: the summary's rate is the work's
        if vectors.tokens is not None:
            from . import token_kernels  # noqa: F401 - likewise for the token parsers' kernels

    started, compiling = time.perf_counter(), kernel_cache.compile_seconds()
    with num_threads(threads) if kernels else contextlib.nullcontext():
        sources = open_sources(str(input), read)
        for source, target in zip(sources, targets, strict=True):
            summary.notes += source.notes
            if resume and target != "-" and target.exists():
                summary.skipped += 1
                continue
            summary.input_shape = source.input_shape
            with _sink(target) as sink:
                _write_source(source, vectors, weights_name, sink, writers.output_kind(str(target)), options,
                              read.mapper, device_table, progress, summary)
            summary.shards += 1
    summary.seconds = time.perf_counter() - started - (kernel_cache.compile_seconds() - compiling)
    if read.mapper is not None:
        summary.oov = read.mapper.report() if read.mapper.oov_tokens else None
        summary.oov_policy, summary.oov_counts = read.mapper.policy, read.mapper.counts
    return summary


@contextlib.contextmanager
def _sink(target):
    """Where an output goes: stdout for ``-``; a device or a pipe (``/dev/null``, a FIFO) opened as a file object
    (pyarrow's own file would seek); else a path, written atomically."""
    if target == "-":
        yield writers.stdout_sink()
    elif is_stream(target):
        with open(target, "wb") as f:
            yield f
    else:
        with atomic_path(target) as tmp:
            yield str(tmp)


def output_plan(weights, input, output, vocab=None) -> dict:
    """``{output file: input file}`` in ``open_sources``' order (``-`` for stdin and stdout), checked before any
    work: no output may overwrite the weights, their vocabulary (``vocab``, else a sidecar beside them) or an input,
    and each must be writable
    (``atomic.check_target``). Creates the output directory of a directory of shards."""
    directory = str(input) != "-" and Path(input).is_dir()
    if str(input) == "-" and sys.stdin is None:
        raise InputFormatError("-: standard input is closed")
    if str(output) == "-":
        if directory:
            raise UsageError(f"{input} is a directory of shards, and -o - is one stream: name an output directory")
        if sys.stdout is None:
            raise InvalidArgumentError("-o -: standard output is closed")
        return {"-": input}
    if directory:
        plan = shard_targets(input, output)
    else:
        writers.output_kind(str(output))
        plan = {Path(output): input}
    source = weights.metadata.get("source") if isinstance(weights, Vectors) else weights
    refuse_aliases(plan, {**(weight_files(source, vocab) if source else {}), **dict.fromkeys(plan.values(), "input")})
    if directory:
        Path(output).mkdir(parents=True, exist_ok=True)
    for target in plan:
        check_target(target)
    return plan


def shard_targets(source, dest) -> dict:
    """The output shard of each input shard of the directory ``source``: ``{output: input}`` in input order. Two
    inputs that would write one output (``a.npy`` and ``a.txt``, both ``a.arrow``) are refused."""
    targets = {}
    for shard in shard_files(source):
        target = Path(dest) / shard_name(shard.name)
        if target in targets:
            raise InvalidArgumentError(f"{source}: {targets[target].name} and {shard.name} would both write "
                                       f"{target.name}")
        targets[target] = shard
    return targets


def _device_table(vectors: Vectors, device: str, summary: Summary):
    """The weights on the GPU for the whole run, or None for the CPU. Under ``auto`` a table larger than the GPU's
    free memory falls back to the CPU, saying so. A fastText model runs on the CPU, where its batches' words get
    their vectors (a note says so under ``cuda``)."""
    if vectors.subwords or not use_gpu(device):
        if vectors.subwords and device == "cuda":
            summary.notes.append("a fastText model's subword vectors are computed on the CPU; running on the CPU")
        summary.device = "cpu"
        return None
    from .gpu import DeviceTable

    try:
        table = DeviceTable(vectors.matrix)
    except GpuUnavailableError as e:
        if device == "cuda":
            raise
        summary.notes.append(f"{e}; running on the CPU")
        summary.device = "cpu"
        return None
    summary.device = "cuda"
    return table


def shard_name(input_name: str) -> str:
    """The output shard for an input shard: Parquet stays Parquet, everything else becomes an Arrow IPC file."""
    p = Path(input_name)
    return p.stem + (".parquet" if p.suffix.lower() == ".parquet" else ".arrow")


def _chunk_bytes(weight: np.ndarray) -> int:
    """Text read size: about BATCH_BYTES of output per chunk (a token's text is a few bytes, its vector D floats)."""
    per_token = max(1, weight.shape[1] * weight.dtype.itemsize)
    return int(np.clip(BATCH_BYTES // per_token * 6, 64 << 10, 4 << 20))


def _no_vocabulary_options(weights_name: str, **given) -> None:
    """Refuse the token options (rather than ignore them) for weights without a vocabulary, which read only ids."""
    for name, value in given.items():
        if value not in (None, False):
            raise InvalidArgumentError(f"{weights_name}: --{name.replace('_', '-')} applies to tokens, "
                                       "and these weights have no vocabulary (ids only)")


def _small_input(input, weight: np.ndarray) -> bool:
    """Whether ``input`` is a file (or directory of them) too small for any batch to need the kernels: its bytes
    bound its ids (but for compressed Parquet, whose large batches would still go to the kernels), so numba, and
    the thread count set for it, are left alone."""
    if str(input) == "-":
        return False
    try:
        path = Path(input)
        size = sum(f.stat().st_size for f in shard_files(path)) if path.is_dir() else path.stat().st_size
    except OSError:  # open_sources names the problem
        return False
    return size * max(1, weight.shape[1]) <= small.SMALL_WORK


def _mapper(vectors, oov, unk_token, padding_idx, lowercase_fallback, mode, tokenizer="space", lowercase=False):
    from .tokens import TokenMapper, text_splitter

    padding_idx = None if padding_idx is None else core.normalize_padding_idx(padding_idx, len(vectors))
    mapper = TokenMapper.create(vectors, oov, unk_token, padding_idx, lowercase_fallback,
                                text_splitter(vectors, tokenizer, lowercase))
    if mode is not None and mapper.policy == "zero":
        raise InvalidArgumentError("--oov zero applies to embed; with bag use skip, unk or padding")
    return mapper


def _table(vectors: Vectors, mapper) -> np.ndarray | None:
    """The table batches are looked up in; None when each batch carries its own: a fastText model's tokens (ids of a
    fastText model read the vocabulary's vectors, computed whole)."""
    return None if vectors.subwords and mapper is not None else vectors.matrix


def _options(vectors: Vectors, options: EmbedOptions) -> EmbedOptions:
    """``options`` checked, with a static model's own: its dtype for the output and, for a bag, its normalisation
    (``StaticModel.encode``'s, docs/semantics.md §7)."""
    if isinstance(vectors.model, StaticModel):
        options.output_dtype = options.output_dtype or np.dtype(vectors.model.dtype).name
        options.normalize = options.mode is not None and vectors.model.normalize
    options.check(vectors)
    return options


def embed_table(
    table: pa.Table,
    vectors: Vectors,
    *,
    column: str | None = None,
    mode: str | None = None,
    padding_idx=None,
    max_norm=None,
    norm_type=2.0,
    oov: str | None = None,
    unk_token: str | None = None,
    lowercase_fallback: bool = False,
    tokenizer: str = "space",
    lowercase: bool = False,
    keep=(),
    weights_column: str | None = None,
    output_dtype: str | None = None,
    vector_type: str = "fixed",
) -> pa.Table:
    """Embed one Arrow table: ``keep`` columns plus ``embedding``; the CLI's per-batch code path, engine-neutral.

    A module-level ``pa.Table -> pa.Table`` function, so Ray Data's ``map_batches(embed_table,
    batch_format="pyarrow", fn_kwargs=...)``, Spark's ``mapInArrow`` and Dask can all call it. Spark takes no
    ``fixed_size_list``: give it ``vector_type="list"``.
    """
    options = _options(vectors, EmbedOptions(padding_idx, max_norm, norm_type, mode, output_dtype, weights_column,
                                             vector_type))
    read = ReadOptions(column=column, keep=tuple(keep), weights_column=weights_column)
    source_column = check_columns("table", table.schema, read, vectors.tokens is not None)
    layout, values = column_kind(table.schema.field(source_column).type)
    mapper = None
    if values == "tokens":
        mapper = _mapper(vectors, oov, unk_token, padding_idx, lowercase_fallback, mode, tokenizer, lowercase)
        layout = "text" if layout == "flat" and mapper.split is not None else layout
    weights = None if weights_column is None else table.column(weights_column).combine_chunks()
    batch = column_batch(table.column(source_column).combine_chunks(), layout, values, 0, mapper, weights)
    result = embed_batch(batch, _table(vectors, mapper), options)
    return pa.table([*(table.column(k) for k in keep), result], names=[*keep, "embedding"])


def output_schema(vectors: Vectors, input_schema: pa.Schema, **options) -> pa.Schema:
    """The schema ``embed_table(table, vectors, **options)`` returns for tables of ``input_schema``, before any data:
    what Spark's ``mapInArrow`` must be told up front. It is the result's own schema for an empty table."""
    return embed_table(input_schema.empty_table(), vectors, **options).schema
