"""Embed a directory of shards on a Dask cluster: one task per shard, each the single-process pipeline on one file.

The driver lists the shards (the rules of ``readers.shard_files``), skips finished ones with ``resume`` and maps one
task per shard over the workers. A task runs ``embed_path`` on its shard, which writes the output shard atomically:
the output is byte for byte the single-process run's, a shard's output exists only once complete, and a rerun with
``resume`` picks up where a failed run stopped. Dask is imported only when a function of this module runs.

Paths: the input and output directories must be visible under the same names to the driver and the workers (a
shared file system); the weight store only to the workers. A ``Vectors`` object instead of a path is sent to every
worker once (``client.scatter(..., broadcast=True)``).
"""

from __future__ import annotations

import inspect
import os
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from .errors import EmbedtoolError, InvalidArgumentError, UsageError
from .pipeline import Summary, embed_path, output_plan
from .progress import progress_bar
from .tokens import TokenMapper
from .vectors import Vectors, load_vectors

_LOADED: dict = {}  # in each worker process: weight path -> (file stamp, Vectors), so a store is mapped once


def embed_dataset(client, source, dest, weights, *, resume: bool = False, retries: int = 2,
                  progress: bool | None = None, **options) -> dict:
    """Embed (or pool) every shard of the directory ``source`` into the directory ``dest``, one Dask task per shard.

    Parameters
    ----------
    client : distributed.Client
        A client of the cluster to run on; setting the cluster up (and closing it) is the caller's business.
    source : path-like
        A directory of input shards: its files in name order, except names starting with ``.`` or ``_``.
    dest : path-like
        The output directory (created if missing): one shard per input shard, named by ``pipeline.shard_name``.
    weights : path-like or Vectors
        A weight file on a path every worker can read (each worker process memory-maps it once), or a ``Vectors``
        object, scattered to every worker once.
    resume : bool
        Skip the shards whose output already exists (complete, since outputs are written atomically).
    retries : int
        How many times Dask reruns a shard whose task failed (a lost worker, an I/O error). An input error
        (``EmbedtoolError``) is the same on every try: it is not retried, it stops the run.
    progress : bool, optional
        A progress bar of finished shards on stderr; None: when stderr is a terminal.
    **options
        ``embed_path``'s options: ``mode``, ``padding_idx``, ``max_norm``, ``norm_type``, ``output_dtype``,
        ``vector_type``, ``input_format``, ``column``, ``keep``, ``tokenizer``, ``seq_len``, ``oov``, ``unk_token``,
        ``lowercase_fallback``, ``batch_rows``, and ``threads``: numba threads per task (default 1, so that
        workers with one thread per core do not oversubscribe the cores).

    Returns
    -------
    dict
        ``rows``, ``lookups`` (ids looked up), ``seconds`` (wall time), ``shards`` (name -> ``rows``,
        ``lookups``, ``seconds``, ``oov_tokens`` of each shard embedded, in name order), ``skipped`` (names),
        ``oov_tokens``, ``oov_counts`` (token -> count), ``oov`` (the CLI's report line, or None),
        ``weight_shape``, ``dtype``, ``device`` (``cpu``, ``cuda`` or both, comma-separated), ``input_shape`` (of
        the last shard) and ``notes``; the last five are None or empty when every shard was skipped.

    Raises
    ------
    EmbedtoolError
        The first input error of any shard, with the single-process run's message; the shards not yet started
        are cancelled, the finished ones stay (rerun with ``resume``).

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> with LocalCluster(n_workers=4, threads_per_worker=1) as cluster, Client(cluster) as client:
    ...     summary = embed_dataset(client, "shards/", "out/", "/shared/glove.arrow", column="tokens", oov="unk")
    """
    from distributed import as_completed

    started = time.perf_counter()
    inspect.signature(embed_path).bind(weights, source, dest, **options)  # a misspelt option fails here, once
    threads = options.pop("threads", None) or 1
    source, dest = Path(os.path.abspath(source)), Path(os.path.abspath(dest))
    # output shard -> input shard, checked as the CLI checks them
    shards = output_plan(weights, source, dest, (options.get("weight_options") or {}).get("vocab"))
    todo = {target: shard for target, shard in shards.items() if not (resume and target.exists())}
    skipped = [shard.name for target, shard in shards.items() if target not in todo]
    if isinstance(weights, Vectors):
        weights = client.scatter(weights, broadcast=True)
    else:
        weights = os.path.abspath(weights)
        loading = options.get("weight_options") or {}
        if loading.get("vocab") is not None:  # the workers may run elsewhere
            options["weight_options"] = {**loading, "vocab": os.path.abspath(loading["vocab"])}
    futures = client.map(_embed_shard, [str(s) for s in todo.values()], [str(t) for t in todo], weights=weights,
                         threads=threads, options=options, retries=retries, pure=False)
    finished = {}
    try:
        with progress_bar("shards", len(futures), "shards", progress) as bar:
            for _, result in as_completed(futures, with_results=True):
                if isinstance(result, EmbedtoolError):
                    raise result
                finished[Path(result.input).name] = result
                bar.advance(1)
    except BaseException:
        client.cancel(futures)  # stop the shards not yet started; finished ones stay for a resume
        raise
    return _combine([finished[shard.name] for shard in todo.values()], skipped, time.perf_counter() - started)


def _embed_shard(shard: str, target: str, *, weights, threads: int, options: dict) -> Summary | EmbedtoolError:
    """One task: embed ``shard`` into ``target`` with the single-process pipeline. An input error is returned, not
    raised: it would fail the same way on every retry."""
    try:
        loading = options.get("weight_options") or {}
        vectors = weights if isinstance(weights, Vectors) else _worker_vectors(weights, loading)
        return embed_path(vectors, shard, target, threads=threads, progress=False, **options)
    except EmbedtoolError as e:
        return e


def _worker_vectors(path: str, loading: dict) -> Vectors:
    """The weights at ``path`` read with the ``load_vectors`` options ``loading``, loaded (memory-mapped) once per
    worker process, and again only if the file or the options change."""
    stat = os.stat(path) if os.path.exists(path) else None  # a missing file: load_vectors names it
    stamp = (stat and (stat.st_ino, stat.st_size, stat.st_mtime_ns), sorted(loading.items()))
    if path not in _LOADED or _LOADED[path][0] != stamp:
        _LOADED[path] = (stamp, load_vectors(path, **loading))
    return _LOADED[path][1]


def _combine(done: list[Summary], skipped: list[str], seconds: float) -> dict:
    """The run's summary from its shards' (in name order, so OOV ties rank as in a single-process run)."""
    counts = Counter()
    for s in done:
        counts.update(s.oov_counts)
    oov_tokens = sum(counts.values())
    policy = next((s.oov_policy for s in done if s.oov_policy), None)
    return {
        "rows": sum(s.rows for s in done),
        "lookups": sum(s.lookups for s in done),
        "seconds": seconds,
        "shards": {Path(s.input).name: {"rows": s.rows, "lookups": s.lookups, "seconds": s.seconds,
                                        "oov_tokens": sum(s.oov_counts.values())} for s in done},
        "skipped": skipped,
        "oov_tokens": oov_tokens,
        "oov_counts": counts,
        "oov": TokenMapper(None, policy, oov_tokens=oov_tokens, counts=counts).report() if oov_tokens else None,
        "weight_shape": done[0].weight_shape if done else None,
        "dtype": done[0].dtype if done else None,
        "device": ", ".join(sorted({s.device for s in done})) or None,
        "input_shape": done[-1].input_shape if done else None,
        "notes": [note for s in done for note in s.notes],
    }


def embed_on_scheduler(scheduler: str, weights, source, dest, **options) -> Summary:
    """The CLI's ``--scheduler``: run ``embed_dataset`` on a running scheduler, or on a LocalCluster for the run.

    ``scheduler`` is a scheduler's address (``tcp://host:8786``) or ``local:N``: a LocalCluster of N worker
    processes with one thread each, closed at the end. Returns the pipeline's ``Summary`` of the run.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InvalidArgumentError("--scheduler needs Dask: pip install 'embedtool[distributed]'") from None
    if not Path(source).is_dir():
        raise InvalidArgumentError(f"{source}: --scheduler runs a directory of shards, and this is not a directory")
    output_plan(weights, source, dest, (options.get("weight_options") or {}).get("vocab"))  # before a cluster starts
    with ExitStack() as stack:
        if scheduler.startswith("local:"):
            workers = scheduler.removeprefix("local:")
            if not workers.isdigit() or int(workers) < 1:
                raise InvalidArgumentError(f"--scheduler {scheduler}: local:N needs a number of workers N >= 1")
            # no dashboard; its HTTP server on any free local port (the default, 8787, may be taken: a warning)
            scheduler = stack.enter_context(LocalCluster(
                n_workers=int(workers), threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                scheduler_kwargs={"dashboard": False}))
        try:
            client = stack.enter_context(Client(scheduler))
        except ValueError as e:  # not an address: Client parses it before connecting
            raise UsageError(f"--scheduler {scheduler}: {e}; give a scheduler's address (tcp://host:8786) or "
                             "local:N") from None
        run = embed_dataset(client, source, dest, weights, **options)
    summary = Summary(str(source), str(dest), run["weight_shape"], run["dtype"], rows=run["rows"],
                      lookups=run["lookups"], seconds=run["seconds"], input_shape=run["input_shape"],
                      shards=len(run["shards"]), skipped=len(run["skipped"]), oov=run["oov"],
                      oov_counts=run["oov_counts"], notes=run["notes"])
    summary.device = run["device"] or "-"
    return summary
