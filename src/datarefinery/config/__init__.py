"""Specs: explicit, validated pydantic models (unknown keys are errors), loaded from YAML with
errors that name the file, line and field.

``task`` holds the task section, ``llm`` the model section (one block per backend), ``run`` the
run spec and its loading, ``loading`` the YAML reader and error formatting that run specs and S3
specs share. The names below are what the rest of the package imports.
"""

from datarefinery.config.llm import (
    EXECUTION_ONLY_LLM_KEYS,
    BudgetConfig,
    LlamaCppConfig,
    LLMConfig,
    LLMSettings,
    OpenAIConfig,
    PricingConfig,
)
from datarefinery.config.loading import (
    Lines,
    StrictModel,
    format_validation_error,
    line_of,
    read_spec_file,
    validate_spec,
)
from datarefinery.config.run import (
    InputSpec,
    LoadedSpec,
    RunSpec,
    load_spec,
    spec_from_dict,
    spec_hash,
)
from datarefinery.config.task import FieldSpec, SamplingSpec, TaskSpec, load_seeds

__all__ = [
    "EXECUTION_ONLY_LLM_KEYS",
    "BudgetConfig",
    "FieldSpec",
    "InputSpec",
    "LLMConfig",
    "LLMSettings",
    "Lines",
    "LlamaCppConfig",
    "LoadedSpec",
    "OpenAIConfig",
    "PricingConfig",
    "RunSpec",
    "SamplingSpec",
    "StrictModel",
    "TaskSpec",
    "format_validation_error",
    "line_of",
    "load_seeds",
    "load_spec",
    "read_spec_file",
    "spec_from_dict",
    "spec_hash",
    "validate_spec",
]
