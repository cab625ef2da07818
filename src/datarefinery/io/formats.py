"""The file formats records are read from and written to."""

from __future__ import annotations

from typing import Literal

# ``auto``: from the file's suffix (a folder is a saved Hugging Face dataset).
Format = Literal["auto", "jsonl", "csv", "parquet", "hf"]
