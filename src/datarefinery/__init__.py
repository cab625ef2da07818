"""datarefinery: training data people can trust, made with generative models.

The public API is what ``__all__`` lists; everything else is internal and may change.
"""

from datarefinery.config import LLMConfig, RunSpec, TaskSpec, load_spec
from datarefinery.errors import (
    BackendError,
    BudgetExceededError,
    ConfigError,
    DatarefineryError,
    InputFileError,
    UsageError,
)
from datarefinery.io import ExportMapping, read_records, write_records
from datarefinery.llm import (
    Backend,
    Engine,
    Message,
    Request,
    Response,
    SamplingParams,
    ScriptedBackend,
    Usage,
)
from datarefinery.loop.rounds import S3Result
from datarefinery.loop.s3 import run_s3
from datarefinery.pipeline import Pipeline
from datarefinery.records import Provenance, Record, Rejected
from datarefinery.runner import RunResult, run
from datarefinery.waiting import export

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BackendError",
    "BudgetExceededError",
    "ConfigError",
    "DatarefineryError",
    "Engine",
    "ExportMapping",
    "InputFileError",
    "LLMConfig",
    "Message",
    "Pipeline",
    "Provenance",
    "Record",
    "Rejected",
    "Request",
    "Response",
    "RunResult",
    "RunSpec",
    "S3Result",
    "SamplingParams",
    "ScriptedBackend",
    "TaskSpec",
    "Usage",
    "UsageError",
    "__version__",
    "export",
    "load_spec",
    "read_records",
    "run",
    "run_s3",
    "write_records",
]
