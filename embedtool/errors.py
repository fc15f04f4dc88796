"""The one exception hierarchy: every error a user can cause is an ``EmbedtoolError``.

The CLI turns each into one line ``Error: <message>`` and exit status 1; the message alone must say what was wrong,
where (file, line, position) and with which value.
"""

import contextlib


class EmbedtoolError(Exception):
    """Base of every error embedtool raises for bad input or bad options."""

    def __reduce__(self):
        # Keep the type, the (possibly file-prefixed) message and the attributes across processes (Dask, Ray).
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(cls, args, state):
    error = Exception.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class InvalidArgumentError(EmbedtoolError, ValueError):
    """An option or array argument is unusable (bad padding_idx, max_norm, weight rank, index dtype...)."""


class UsageError(InvalidArgumentError):
    """Arguments that cannot work together, whatever the files hold (``-o -`` for a directory); the CLI exits 2."""


class BadIndexError(EmbedtoolError, IndexError):
    """An index is negative, too large or not integral.

    ``where`` describes the position in the caller's terms: ``position (1, 2)`` for an array, ``line 4, column 2``
    for a text file. The value, the place and the table size are kept as attributes too.
    """

    def __init__(self, value, where: str, num_embeddings: int, reason: str = "out of range"):
        self.value = value
        self.where = where
        self.num_embeddings = num_embeddings
        self.reason = reason
        super().__init__(
            f"index {value} at {where} is {reason} "
            f"(the table has {num_embeddings} rows, valid indices are 0..{num_embeddings - 1})"
        )


class GpuUnavailableError(EmbedtoolError):
    """The GPU path cannot run: numba-cuda missing, no CUDA driver or device, or the table does not fit."""


class MissingExtraError(EmbedtoolError):
    """An optional dependency that a file or option needs is not installed; the message names the extra."""


class InputFormatError(EmbedtoolError):
    """A file cannot be read as the format it claims to be (or is missing)."""


@contextlib.contextmanager
def in_file(path):
    """Prefix the message of any ``EmbedtoolError`` raised in the block with ``path: `` (type kept), once."""
    try:
        yield
    except EmbedtoolError as e:
        if not str(e).startswith(f"{path}: "):
            e.args = (f"{path}: {e}",)
        raise
