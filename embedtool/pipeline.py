"""The batch pipeline: read an input batch by batch, embed it, write Arrow record batches, atomically.

Memory stays bounded by one batch and the (memory-mapped) weight table, never by the input size: the output
buffer of a batch is allocated once and reused, since fresh allocations cost page faults.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import __version__, core, writers
from .atomic import atomic_path
from .errors import InputFormatError, in_file
from .progress import progress_bar
from .vectors import Vectors, load_vectors

#: Default batch size in output bytes, when ``batch_rows`` is not given.
BATCH_BYTES = 32 << 20


@dataclass
class Summary:
    """What a run did, for the CLI's closing summary."""

    input: str
    output: str
    input_shape: tuple
    weight_shape: tuple
    dtype: str
    rows: int
    lookups: int
    seconds: float

    @property
    def lookups_per_second(self) -> float:
        return self.lookups / self.seconds if self.seconds > 0 else float("inf")


@contextlib.contextmanager
def num_threads(n: int | None):
    """Run the block with numba limited to ``n`` threads (None: all), restoring the previous count after."""
    if n is None:
        yield
        return
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def open_indices(path) -> np.ndarray:
    """Memory-map a ``.npy`` index array (any integer dtype, any rank)."""
    path = Path(path)
    if not path.exists():
        raise InputFormatError(f"{path}: no such file")
    try:
        idx = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        raise InputFormatError(f"{path}: not a readable .npy file ({e})") from None
    if idx.dtype.kind not in "iuf":
        raise InputFormatError(f"{path}: indices must be integers, got dtype {idx.dtype}")
    return idx


def _metadata(vectors: Vectors, weights_name: str, input_name: str, input_shape, options: dict) -> dict:
    meta = {
        "embedtool.version": __version__,
        "embedtool.weights": weights_name,
        "embedtool.input": input_name,
        "embedtool.input_shape": list(input_shape),
        "embedtool.weight_shape": list(vectors.matrix.shape),
        "embedtool.dtype": str(vectors.matrix.dtype),
        **{f"embedtool.{k}": v for k, v in options.items()},
    }
    return {k: json.dumps(v) for k, v in meta.items()}


def embed_file(
    weights,
    input,
    output,
    *,
    padding_idx=None,
    max_norm=None,
    norm_type=2.0,
    batch_rows: int | None = None,
    threads: int | None = None,
    progress: bool | None = None,
) -> Summary:
    """Embed a ``.npy`` index file into an Arrow/Parquet file (or ``-``, stdout), batch by batch.

    ``weights`` is a path or a ``Vectors``. Rows are the input's first axis (a 0-d input is one row). Errors name the
    input file and the index's position in the whole input; nothing is left at ``output`` on any failure.
    """
    from .lookup import embedding

    vectors = weights if isinstance(weights, Vectors) else load_vectors(weights)
    weight = vectors.matrix
    num_embeddings, dim = weight.shape
    # Validate options once, before anything is read or written.
    core.normalize_padding_idx(padding_idx, num_embeddings)
    core.check_max_norm(max_norm, norm_type)
    idx = open_indices(input)
    fmt = writers.output_format(str(output))
    shape = idx.shape
    rows_view = idx.reshape(1) if idx.ndim == 0 else idx
    total_rows = rows_view.shape[0]
    inner = rows_view.shape[1:]
    row_bytes = max(1, int(np.prod(inner, dtype=np.int64)) * dim * weight.dtype.itemsize)
    batch_rows = batch_rows or max(1, BATCH_BYTES // row_bytes)
    buffer = np.empty((min(batch_rows, total_rows),) + inner + (dim,), weight.dtype)

    options = {"padding_idx": padding_idx, "max_norm": max_norm, "norm_type": norm_type}
    column_type = writers.embedding_type(weight.dtype, inner + (dim,))
    schema = pa.schema([pa.field("embedding", column_type)]).with_metadata(
        _metadata(vectors, Path(str(vectors.metadata.get("source", weights))).name, Path(input).name, shape, options)
    )

    def run(sink):
        with writers.batch_writer(sink, schema, fmt) as write, progress_bar(
            "embedding", total_rows, "rows", progress
        ) as bar:
            for start in range(0, total_rows, batch_rows):
                stop = min(total_rows, start + batch_rows)
                chunk = np.asarray(rows_view[start:stop])
                where = core.array_position(shape, offset=start) if idx.ndim else core.array_position(())
                with in_file(input):
                    values = embedding(
                        chunk, weight, padding_idx, max_norm, norm_type, out=buffer[: stop - start], where=where
                    )
                write(pa.record_batch([writers.embedding_array(values)], schema=schema))
                bar.advance(stop - start)

    started = time.perf_counter()
    with num_threads(threads):
        if str(output) == "-":
            run(writers.stdout_sink())
        else:
            with atomic_path(output) as tmp:
                run(str(tmp))
    seconds = time.perf_counter() - started
    return Summary(
        input=str(input),
        output=str(output),
        input_shape=tuple(shape),
        weight_shape=tuple(weight.shape),
        dtype=str(weight.dtype),
        rows=total_rows,
        lookups=int(idx.size),
        seconds=seconds,
    )
