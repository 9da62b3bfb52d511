"""The ways to answer: the model alone, RAG, and fine-tuning combined with RAG.

- ``closed``: the (fine-tuned) model alone, no retrieval;
- ``rag``: retrieve, then the base model answers from numbered sources with citations;
- ``serial``: retrieve, then the fine-tuned model answers from the sources, citations kept;
- ``parallel``: the fine-tuned model drafts while retrieval runs, then reconciles;
- ``layered``: a router picks the strategy, a judge checks the answer (falls back, abstains).
"""

from ragtune.pipelines.closed import closed_messages
from ragtune.pipelines.parts import Parts
from ragtune.pipelines.protocol import Pipeline
from ragtune.pipelines.registry import PIPELINES, build_pipeline
from ragtune.pipelines.run import ask

__all__ = ["PIPELINES", "Parts", "Pipeline", "ask", "build_pipeline", "closed_messages"]
