"""The evaluation tests share the small labeled files of tests.support.datasets."""

from tests.support.datasets import labeled

__all__ = ["labeled"]
