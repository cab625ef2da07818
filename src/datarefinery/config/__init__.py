"""Specs: explicit, validated pydantic models (unknown keys are errors), loaded from YAML with
errors that name the file, line and field.

``task`` holds the task section, ``llm`` the model section (one block per backend),
``llm_override`` the model chosen from outside a spec (``--llm``, ``--model``, ``llm=``), ``run``
the run spec and its loading, ``loading`` the YAML reader and error formatting that run specs and
S3 specs share. The names below are what the rest of the package imports.
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
from datarefinery.config.llm_override import (
    LLMOverride,
    load_llm_file,
    merge_llm,
    override_llm,
    shortcut_layer,
    validate_llm,
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
    ExecutorSpec,
    InputSpec,
    LoadedSpec,
    RunSpec,
    SurrogateKeyConfig,
    load_spec,
    spec_from_dict,
    spec_hash,
)
from datarefinery.config.task import FieldSpec, SamplingSpec, TaskSpec, load_seeds

__all__ = [
    "EXECUTION_ONLY_LLM_KEYS",
    "BudgetConfig",
    "ExecutorSpec",
    "FieldSpec",
    "InputSpec",
    "LLMConfig",
    "LLMOverride",
    "LLMSettings",
    "Lines",
    "LlamaCppConfig",
    "LoadedSpec",
    "OpenAIConfig",
    "PricingConfig",
    "RunSpec",
    "SamplingSpec",
    "StrictModel",
    "SurrogateKeyConfig",
    "TaskSpec",
    "format_validation_error",
    "line_of",
    "load_llm_file",
    "load_seeds",
    "load_spec",
    "merge_llm",
    "override_llm",
    "read_spec_file",
    "shortcut_layer",
    "spec_from_dict",
    "spec_hash",
    "validate_llm",
    "validate_spec",
]
