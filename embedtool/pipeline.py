"""The batch pipeline: read an input batch by batch, embed (or pool) it, write Arrow record batches, atomically.

Memory stays bounded by a few batches and the (memory-mapped) weight table, never by the input size. A reader
thread prepares the next batch (parsing, tokenising: pyarrow and the numba parser release the GIL) while the main
thread embeds and writes the current one; the output buffer is reused, since fresh allocations cost page faults.
"""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import ThreadPoolExecutor
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import __version__, core, writers
from .atomic import atomic_path
from .errors import GpuUnavailableError, InvalidArgumentError, in_file
from .progress import progress_bar
from .readers import Batch, ReadOptions, Source, check_columns, column_batch, column_kind, open_sources
from .tokens import TokenMapper
from .vectors import Vectors, load_vectors

BATCH_BYTES = 32 << 20  # output bytes per batch, about
OUTPUT_DTYPES = ("float16", "float32", "float64")


@dataclass
class EmbedOptions:
    """What is computed for each batch: the lookup options, pooling (``mode``), the input column of per-sample
    weights and the output dtype."""

    padding_idx: int | None = None
    max_norm: float | None = None
    norm_type: float = 2.0
    mode: str | None = None
    output_dtype: str | None = None
    weights_column: str | None = None

    def check(self, weight: np.ndarray) -> None:
        """Validate everything before any input is read or output written."""
        core.normalize_padding_idx(self.padding_idx, weight.shape[0])
        core.check_max_norm(self.max_norm, self.norm_type)
        if self.mode is not None and self.mode not in core.BAG_MODES:
            raise InvalidArgumentError(f"unknown mode {self.mode!r}; choose one of {', '.join(core.BAG_MODES)}")
        if self.output_dtype is not None and self.output_dtype not in OUTPUT_DTYPES:
            raise InvalidArgumentError(f"unknown output dtype {self.output_dtype!r}; choose one of {', '.join(OUTPUT_DTYPES)}")
        if self.weights_column is not None and self.mode != "sum":
            raise InvalidArgumentError("--weights-column needs bag --mode sum (per-sample weights scale the rows "
                                       "of a sum, as in torch)")

    def metadata(self) -> dict:
        found = {"padding_idx": self.padding_idx, "max_norm": self.max_norm, "norm_type": self.norm_type}
        if self.weights_column is not None:
            found["weights_column"] = self.weights_column
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


def batch_values(batch: Batch, weight: np.ndarray, options: EmbedOptions, buffer: _Buffer | None = None):
    """The vectors of one batch on the CPU: ``ids.shape + (D,)`` embedded, or ``(rows, D)`` pooled."""
    from .lookup import embedding

    buffer = buffer or _Buffer()
    dim = weight.shape[1]
    if options.mode is None:
        shape = batch.ids.shape + (dim,)
        return embedding(batch.ids, weight, options.padding_idx, options.max_norm, options.norm_type,
                         out=buffer.get(shape, weight.dtype), where=batch.where)
    from .bag import embedding_bag

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
    if options.output_dtype is not None and values.dtype != np.dtype(options.output_dtype):
        from .lookup import to_float16

        values = to_float16(values) if options.output_dtype == "float16" else values.astype(options.output_dtype)
    if options.mode is not None:
        return writers.vectors_array(values)
    if batch.offsets is not None:
        return writers.ragged_array(values, batch.offsets)
    return writers.embedding_array(values)


def embed_batch(batch: Batch, weight: np.ndarray, options: EmbedOptions, buffer: _Buffer | None = None) -> pa.Array:
    """The output column for one batch: its rows embedded (or pooled with ``options.mode``) on the CPU."""
    return batch_column(batch, batch_values(batch, weight, options, buffer), options)


def _column_type(source: Source, weight: np.ndarray, options: EmbedOptions) -> pa.DataType:
    dtype = np.dtype(options.output_dtype or weight.dtype)
    dim = weight.shape[1]
    if options.mode is not None:
        return writers.vectors_type(dtype, dim)
    if source.ragged:
        return writers.ragged_type(dtype, dim)
    return writers.embedding_type(dtype, source.row_shape + (dim,))


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
    weight = vectors.matrix
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
        pairs = ((b, batch_values(b, weight, options, buffers[i % 2])) for i, b in enumerate(batches))
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
    input_format: str | None = None,
    column: str | None = None,
    keep=(),
    weights_column: str | None = None,
    tokenizer: str = "space",
    seq_len: int | None = None,
    oov: str | None = None,
    unk_token: str | None = None,
    lowercase_fallback: bool = False,
    batch_rows: int | None = None,
    threads: int | None = None,
    progress: bool | None = None,
    resume: bool = False,
    device: str = "auto",
    max_line_bytes: int | None = None,
) -> Summary:
    """Embed (or pool, with ``mode``) every row of ``input`` and write ``output``; the engine of the CLI.

    ``input`` is a file, a directory of shards (``output`` is then a directory of shards, one per input file) or
    ``-`` (stdin); ``output`` is ``.arrow``/``.feather``/``.arrows``/``.parquet`` or ``-`` (an IPC stream on
    stdout). Every output file is written atomically; ``resume`` skips shards whose output already exists.
    ``device``: ``auto`` runs on the GPU when one is usable (the table is copied there once), ``cuda`` insists,
    ``cpu`` never touches CUDA. ``weights_column`` (with ``mode="sum"``) names the Arrow/Parquet column of
    per-sample weights: a number per id, in lists as long as the ids' lists.
    """
    vectors = weights if isinstance(weights, Vectors) else load_vectors(weights)
    weight = vectors.matrix
    options = EmbedOptions(padding_idx, max_norm, norm_type, mode, output_dtype, weights_column)
    options.check(weight)
    read = ReadOptions(input_format=input_format, column=column, keep=tuple(keep), weights_column=weights_column,
                       tokenizer=tokenizer, seq_len=seq_len, batch_rows=batch_rows, chunk_bytes=_chunk_bytes(weight),
                       max_ids=max(1, BATCH_BYTES // max(1, weight.shape[1] * weight.dtype.itemsize)),
                       max_line_bytes=max_line_bytes)
    weights_name = Path(str(vectors.metadata.get("source", weights))).name
    if vectors.tokens is not None:
        read.make_mapper = lambda: _mapper(vectors, oov, unk_token, padding_idx, lowercase_fallback, mode)
    else:
        _no_vocabulary_options(weights_name, oov=oov, unk_token=unk_token, lowercase_fallback=lowercase_fallback)
    directory = str(input) != "-" and Path(input).is_dir()
    summary = Summary(str(input), str(output), tuple(weight.shape), np.dtype(output_dtype or weight.dtype).name)
    device_table = _device_table(weight, device, summary)
    from . import lookup  # noqa: F401 - numba loads before the clock starts: the summary's rate is the work's

    started = time.perf_counter()
    with num_threads(threads):
        sources = open_sources(str(input), read)
        if directory:
            out_dir = Path(output)
            out_dir.mkdir(parents=True, exist_ok=True)
            targets = [out_dir / shard_name(s.name) for s in sources]
        elif str(output) != "-":
            writers.output_format(str(output))
            targets = [Path(output)]
        else:
            targets = ["-"]
        for source, target in zip(sources, targets):
            summary.notes += source.notes
            if resume and target != "-" and target.exists():
                summary.skipped += 1
                continue
            summary.input_shape = source.input_shape
            if target == "-":
                _write_source(source, vectors, weights_name, writers.stdout_sink(), "ipc-stream", options,
                              read.mapper, device_table, progress, summary)
            else:
                with atomic_path(target) as tmp:
                    _write_source(source, vectors, weights_name, str(tmp), writers.output_format(str(target)),
                                  options, read.mapper, device_table, progress, summary)
            summary.shards += 1
    summary.seconds = time.perf_counter() - started
    if read.mapper is not None:
        summary.oov = read.mapper.report() if read.mapper.oov_tokens else None
        summary.oov_policy, summary.oov_counts = read.mapper.policy, read.mapper.counts
    return summary


def _device_table(weight: np.ndarray, device: str, summary: Summary):
    """The weights on the GPU for the whole run, or None for the CPU. Under ``auto`` a table larger than the GPU's
    free memory falls back to the CPU, saying so."""
    if not core.use_gpu(device):
        summary.device = "cpu"
        return None
    from .gpu import DeviceTable

    try:
        table = DeviceTable(weight)
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


def _mapper(vectors, oov, unk_token, padding_idx, lowercase_fallback, mode) -> TokenMapper:
    mapper = TokenMapper.create(vectors, oov, unk_token, padding_idx, lowercase_fallback)
    if mode is not None and mapper.policy == "zero":
        raise InvalidArgumentError("--oov zero applies to embed; with bag use skip, unk or padding")
    if mapper.policy == "padding":
        mapper.padding_idx = core.normalize_padding_idx(padding_idx, len(vectors))
    return mapper


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
    keep=(),
    weights_column: str | None = None,
    output_dtype: str | None = None,
) -> pa.Table:
    """Embed one Arrow table: ``keep`` columns plus ``embedding``; the CLI's per-batch code path, engine-neutral.

    A module-level ``pa.Table -> pa.Table`` function, so Ray Data's ``map_batches(embed_table,
    batch_format="pyarrow", fn_kwargs=...)``, Spark's ``mapInArrow`` and Dask can all call it.
    """
    options = EmbedOptions(padding_idx, max_norm, norm_type, mode, output_dtype, weights_column)
    options.check(vectors.matrix)
    read = ReadOptions(column=column, keep=tuple(keep), weights_column=weights_column)
    source_column = check_columns("table", table.schema, read, vectors.tokens is not None)
    layout, values = column_kind(table.schema.field(source_column).type)
    mapper = _mapper(vectors, oov, unk_token, padding_idx, lowercase_fallback, mode) if values == "tokens" else None
    weights = None if weights_column is None else table.column(weights_column).combine_chunks()
    batch = column_batch(table.column(source_column).combine_chunks(), layout, values, 0, mapper, weights)
    result = embed_batch(batch, vectors.matrix, options)
    return pa.table([*(table.column(k) for k in keep), result], names=[*keep, "embedding"])
