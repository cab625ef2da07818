"""The S3 loop and the experiments around it: orchestration over runs."""
