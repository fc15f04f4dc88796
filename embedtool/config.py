"""Tunables of the GPU kernels, read at every launch so that tests can patch them down.

The CUDA simulator runs one Python thread per CUDA thread, so the GPU tests set small values here.
"""

#: Threads in every block: a power of two (the block reductions halve it). Row kernels arrange them as
#: ``lanes x rows``: ``lanes`` (up to a warp) share one row so that its reads and writes are coalesced, and a
#: block works on ``THREADS_PER_BLOCK // lanes`` rows at a time.
THREADS_PER_BLOCK = 256

#: Grid-stride kernels launch at most this many blocks per multiprocessor (8 x 256 threads fill an H100 SM).
BLOCKS_PER_SM = 8
