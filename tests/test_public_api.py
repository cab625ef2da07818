import datarefinery


def test_public_api_is_pinned() -> None:
    # Changing this list is an API change: update it on purpose, with the README.
    assert sorted(datarefinery.__all__) == sorted(
        [
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
            "UsageError",
            "Usage",
            "__version__",
            "export",
            "load_spec",
            "read_records",
            "run",
            "run_s3",
            "write_records",
        ]
    )
    for name in datarefinery.__all__:
        assert hasattr(datarefinery, name), name
