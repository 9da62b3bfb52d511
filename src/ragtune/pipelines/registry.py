"""Pipelines by name, from the ``ragtune.pipelines`` entry points (pyproject.toml)."""

from __future__ import annotations

from ragtune.components import Registry
from ragtune.pipelines.parts import Parts
from ragtune.pipelines.protocol import Pipeline, PipelineFactory

__all__ = ["PIPELINES", "PIPELINE_FACTORIES", "build_pipeline"]

PIPELINE_FACTORIES: Registry[PipelineFactory] = Registry("pipelines", "pipeline")
PIPELINES = tuple(PIPELINE_FACTORIES)


def build_pipeline(name: str, parts: Parts) -> Pipeline:
    """The pipeline called ``name`` over ``parts``."""
    return PIPELINE_FACTORIES[name](parts)
