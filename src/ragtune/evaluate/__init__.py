"""Evaluation: datasets, metrics and runs; :func:`compare` runs arms head to head."""

from ragtune.evaluate.run import CompareResult, compare

__all__ = ["CompareResult", "compare"]
