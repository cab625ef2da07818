"""The S3 loop and the small models it trains."""
