"""embedtool: embedding lookups with torch's semantics, outside a training framework.

Attributes are imported on first use, so ``import embedtool`` (and ``embedtool --help``) never loads numba.
"""

import os
from importlib import import_module

from . import kernel_cache

# OpenMP threads that spin while they wait stall every parallel kernel for a scheduler time slice (~16 ms measured)
# whenever another thread or process holds a core, which the pipeline's reader and writer threads always do.
# Passive waiting costs microseconds per kernel launch instead. The user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# numba caches the compiled kernels somewhere writable, whatever the install: never "no locator available".
kernel_cache.configure()

__version__ = "0.1.0"

_LAZY = {
    "embedding": "embedtool.gather",
    "embedding_bag": "embedtool.bag",
    "Vectors": "embedtool.vectors",
    "load_vectors": "embedtool.vectors",
    "save_vectors": "embedtool.vectors",
    "embed_table": "embedtool.pipeline",
    "embed_path": "embedtool.pipeline",
    "output_schema": "embedtool.pipeline",
    "EmbedtoolError": "embedtool.errors",
    "InvalidArgumentError": "embedtool.errors",
    "BadIndexError": "embedtool.errors",
    "InputFormatError": "embedtool.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'embedtool' has no attribute {name!r}")
