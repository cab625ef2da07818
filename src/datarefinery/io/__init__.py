"""Reading and writing records: JSONL, CSV, Parquet and local Hugging Face datasets; exporting
them as training data.
"""

from datarefinery.io.export import export
from datarefinery.io.read import read_records
from datarefinery.io.training import ExportMapping
from datarefinery.io.write import write_records

__all__ = ["ExportMapping", "export", "read_records", "write_records"]
