"""``embedtool compile``: compile and cache the CPU kernels ahead of time, for container images and shared installs.

numba compiles a kernel for each combination of argument types it meets, so this runs the real pipeline (with the
NumPy path of small inputs turned off) on tiny tables and inputs covering what the CLI meets: GloVe text, ids in
.npy and text, tokens, every pooling mode, max_norm, info --stats, per dtype; and tables of a few common widths,
since the pooling kernel is compiled per column-block width (``bag._column_blocks``: widths up to 128 float32 columns
each have their own, wider tables share a block width). A table of another width compiles its pooling kernel on
first use.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from . import kernel_cache, small

#: Widths compiled ahead: GloVe's 50 and 100, 300 (word2vec, fastText; also 200's block width), 768 (BERT-base; the
#: 128-column block of every float32 table from 512 columns on, on AVX2 CPUs).
DIMS = (50, 100, 300, 768)
_DTYPES = ("float32", "float16", "float64")


def compile_kernels(say: Callable[[str], None] = print) -> float:
    """Compile and cache every kernel the CLI uses, saying what as it goes; returns the seconds compiling took."""
    from .info import table_stats
    from .pipeline import embed_path
    from .vectors import load_vectors

    saved = small.SMALL_WORK, small.SMALL_TEXT, small.SMALL_VOCAB
    small.SMALL_WORK = small.SMALL_TEXT = small.SMALL_VOCAB = -1  # every call on the kernels
    started = kernel_cache.compile_seconds()
    try:
        with tempfile.TemporaryDirectory(prefix="embedtool-compile-") as tmp:
            tmp = Path(tmp)
            rng = np.random.default_rng(0)
            words = [f"w{i}" for i in range(64)]
            glove = tmp / "glove.txt"
            glove.write_text("".join(f"{w} {' '.join(f'{v:.6f}' for v in rng.standard_normal(50))}\n" for w in words))
            say("text formats")
            load_vectors(glove)
            (tmp / "ids.txt").write_text("".join(" ".join(map(str, rng.integers(0, 64, 5))) + "\n" for _ in range(16)))
            (tmp / "tokens.txt").write_text("".join(" ".join(rng.choice(words, 5)) + " oov\n" for _ in range(16)))
            np.save(tmp / "ids.npy", rng.integers(0, 64, (16, 5)))
            for dtype in _DTYPES:
                for dim in DIMS:
                    say(f"{dtype} tables of width {dim}")
                    np.save(tmp / "w.npy", rng.standard_normal((64, dim)).astype(dtype))
                    (tmp / "w.vocab.txt").write_text("".join(w + "\n" for w in words))
                    weights = load_vectors(tmp / "w.npy")
                    table_stats(weights.matrix, progress=False)  # info --stats
                    ids = {"input_format": "ids"}
                    runs = [("ids.npy", {}), ("ids.txt", {"padding_idx": 0, **ids}), ("tokens.txt", {"oov": "skip"}),
                            ("ids.npy", {"max_norm": 1.0})]
                    runs += [("ids.txt", {"mode": mode, "max_norm": max_norm, **ids}) for mode in ("sum", "mean", "max")
                             for max_norm in (None, 1.0)]
                    runs += [("tokens.txt", {"mode": "mean", "oov": "skip"})]
                    if dtype == "float32":
                        runs += [("ids.npy", {"output_dtype": "float16"})]
                    for name, options in runs:
                        embed_path(weights, str(tmp / name), str(tmp / "out.arrow"), progress=False, device="cpu",
                                   **options)
    finally:
        small.SMALL_WORK, small.SMALL_TEXT, small.SMALL_VOCAB = saved
    return kernel_cache.compile_seconds() - started
