"""Pipelines by name: the one place that says which pipelines exist."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ragtune.errors import ConfigError
from ragtune.pipelines.closed import Closed
from ragtune.pipelines.layered import Layered
from ragtune.pipelines.parallel import Parallel
from ragtune.pipelines.parts import Parts
from ragtune.pipelines.protocol import Pipeline, PipelineFactory
from ragtune.pipelines.serial import Serial, rag

__all__ = ["PIPELINES", "PIPELINE_FACTORIES", "build_pipeline"]

PIPELINE_FACTORIES: Mapping[str, PipelineFactory] = MappingProxyType({
    "closed": Closed, "rag": rag, "serial": Serial, "parallel": Parallel, "layered": Layered,
})
PIPELINES = tuple(PIPELINE_FACTORIES)


def build_pipeline(name: str, parts: Parts) -> Pipeline:
    """The pipeline called ``name`` over ``parts``."""
    factory = PIPELINE_FACTORIES.get(name)
    if factory is None:
        raise ConfigError(f"unknown pipeline {name!r}; valid choices: {', '.join(PIPELINES)}")
    return factory(parts)
