"""Refinement: rewrite records so that a criterion holds (no PII, not toxic) with minimal change."""
