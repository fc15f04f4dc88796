"""Where a call runs: the device names, GPU arrays, and whether the GPU path can run here (nothing CUDA is imported for the CPU)."""

from __future__ import annotations

import functools
import importlib.util

from .errors import GpuUnavailableError, InvalidArgumentError


DEVICES = ("auto", "cpu", "cuda")


def on_gpu(array) -> bool:
    """Whether ``array`` lives on a GPU (a numba device array, CuPy, a torch CUDA tensor...)."""
    return hasattr(array, "__cuda_array_interface__")


def use_gpu(device, *arrays) -> bool:
    """Decide where to run. ``None``: where the data is; ``auto``: the GPU when one is usable, else the CPU,
    silently; ``cuda``: the GPU, or a one-line ``GpuUnavailableError`` naming why not; ``cpu``: never the GPU.

    Nothing of CUDA is imported for ``cpu``, nor for ``None`` with host arrays.
    """
    if device is not None and device not in DEVICES:
        raise InvalidArgumentError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    data_on_gpu = any(on_gpu(a) for a in arrays)
    if device == "cpu":
        if data_on_gpu:
            raise InvalidArgumentError("device='cpu' needs host arrays, got an array on the GPU")
        return False
    if device is None and not data_on_gpu:
        return False
    if device == "cuda" or data_on_gpu:
        require_gpu()
        return True
    return gpu_available()


@functools.cache
def _unavailable_reason() -> str | None:
    if importlib.util.find_spec("numba_cuda") is None:
        return "numba-cuda is not installed (pip install 'embedtool[gpu]')"
    import numba
    from numba import cuda as numba_cuda
    from numba.cuda.cudadrv import nvvm

    if not numba_cuda.is_available():
        error = numba_cuda.cuda_error()
        return f"no usable CUDA driver ({' '.join(str(error).split())})" if error else "no CUDA GPU found"
    if not (numba.core.config.ENABLE_CUDASIM or nvvm.is_available()):
        return "numba-cuda cannot compile kernels: libNVVM not found (pip install 'numba-cuda[cu12]')"
    return None


def gpu_available() -> bool:
    """Whether the GPU path can run here: numba-cuda installed, a CUDA driver and a GPU (or the CUDA simulator)."""
    return _unavailable_reason() is None


def require_gpu() -> None:
    """Raise ``GpuUnavailableError`` with a one-line reason unless the GPU path can run here."""
    reason = _unavailable_reason()
    if reason is not None:
        raise GpuUnavailableError(f"cannot use the GPU: {reason}")
