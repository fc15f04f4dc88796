"""Tunables of the GPU kernels, read at every launch so that tests can patch them down.

The CUDA simulator runs one Python thread per CUDA thread, so the GPU tests set small values here.
"""

#: Threads in every block: a power of two (the block reductions halve it). Row kernels arrange them as
#: ``lanes x rows``: ``lanes`` (up to a warp) share one row so that its reads and writes are coalesced, and a
#: block works on ``THREADS_PER_BLOCK // lanes`` rows at a time.
THREADS_PER_BLOCK = 256

#: Grid-stride loops over rows launch at most this many blocks per multiprocessor: many more than fit at once, so
#: that the blocks still running at the end of a kernel are a small part of its work.
ROW_BLOCKS_PER_SM = 256

#: Loops over flat arrays (the index check, the marking of rows) launch at most this many blocks per
#: multiprocessor, about one full wave: each block of the index check ends in atomics on the same two values.
FLAT_BLOCKS_PER_SM = 8
