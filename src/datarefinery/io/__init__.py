"""Reading and writing records: JSONL, CSV, Parquet and local Hugging Face datasets."""

from datarefinery.io.read import read_records
from datarefinery.io.write import write_records

__all__ = ["read_records", "write_records"]
