"""Arrow output columns (writers.py): list vectors are views of the NumPy buffer, not copies."""

import numpy as np

from embedtool import writers


def test_list_vectors_share_the_values_buffer():
    values = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    array = writers.embedding_array(values, "list")
    array.validate(full=True)
    assert array.to_pylist() == values.tolist()
    assert array.values.values.buffers()[1].address == values.ctypes.data
