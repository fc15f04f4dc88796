"""The weight formats embedtool reads and writes, one module each: ``arrow`` (the store), ``parquet``, ``npy``,
``safetensors``, and the text formats (``text_numbers``, ``text_rows``, ``text_blocks``, ``text_write``); ``base``
holds what they share."""
