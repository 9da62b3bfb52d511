"""A knowledge base: the object users open to ingest, search and ask.

It is a facade over :class:`~ragtune.index.core.Index` (the folder: store, lexical index,
record of sources, read view and the commit of every write; its layout is described there),
the embedder and generator it is built with, the retrievers of :mod:`ragtune.retrieve` and
the pipelines of :mod:`ragtune.pipelines`.

Over 400 lines because it is the one object a user holds: each part it wires up (embedder
and its precision, generator and adapters, retrievers, the pipelines' parts) is a few lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ragtune.config import EmbedderSettings, Settings
from ragtune.documents.language import detect_language
from ragtune.errors import ConfigError, EmbedderMismatchError
from ragtune.index import maintenance
from ragtune.index.bm25 import BM25Index
from ragtune.index.core import Index
from ragtune.index.ingest import Ingestor, IngestReport
from ragtune.index.manifest import MANIFEST, Manifest
from ragtune.index.reader import ReadView
from ragtune.index.sources import SourceRecord
from ragtune.index.stores import Store, StoreSpec
from ragtune.models.components import (
    build_embedder,
    build_generator,
    default_embedder_model,
    embedder_settings,
    language_generator,
    left_to_default,
)
from ragtune.models.embedders import int8_supported
from ragtune.models.protocol import Embedder, Generator
from ragtune.retrieve.diversity import merge_spans
from ragtune.retrieve.filters import Filter
from ragtune.retrieve.languages import SAMPLE, corpus_languages
from ragtune.retrieve.pipeline import SearchPipeline
from ragtune.retrieve.protocol import Retriever
from ragtune.retrieve.rerank import Reranker, build_reranker
from ragtune.retrieve.retrievers import MODES, DenseRetriever, HybridRetriever, LexicalRetriever
from ragtune.types import Answer, Hit

if TYPE_CHECKING:
    from ragtune.index.verify import VerifyReport


class KnowledgeBase:
    """Documents indexed for retrieval, and answers with cited sources.

    Example:
        >>> kb = KnowledgeBase.create("my-kb")  # doctest: +SKIP
        >>> kb.ingest(["docs/"]).summary()  # doctest: +SKIP
        >>> for hit in kb.search("how do I install it?"):  # doctest: +SKIP
        ...     print(hit.chunk.source, hit.score)
        >>> answer = kb.ask("How do I install it?")  # doctest: +SKIP
        >>> print(answer.text, [c.chunk.source for c in answer.citations])  # doctest: +SKIP
    """

    def __init__(self, index: Index, settings: Settings, *,
                 embedder: Embedder | None = None, generator: Generator | None = None) -> None:
        self.index = index
        self.path = index.path
        self.settings = settings
        self._embedder = embedder
        self._generator = generator
        self._given_generator = generator is not None  # a caller's generator answers all
        self._by_language: dict[str, Generator] = {}
        self._tuned: dict[str, Generator] = {}
        self._reranker: Reranker | None = None
        self._cached: Embedder | None = None
        self._languages: tuple[ReadView, tuple[str, ...]] | None = None
        if embedder is not None:
            self._check_embedder(embedder)

    # --- opening --------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, settings: Settings | None = None, *,
             embedder: Embedder | None = None, generator: Generator | None = None,
             ) -> KnowledgeBase:
        """Open an existing knowledge base; its embedder is the one in its manifest."""
        settings = settings or Settings()
        index = Index.open(path, ann_min_rows=settings.retrieval.ann_min_rows,
                           lock_timeout_s=settings.ingest.lock_timeout_s)
        return cls(index, settings, embedder=embedder, generator=generator)

    @classmethod
    def create(cls, path: str | Path, settings: Settings | None = None, *,
               embedder: Embedder | str | None = None, generator: Generator | None = None,
               store: str | None = None) -> KnowledgeBase:
        """Open the knowledge base at ``path``, creating it (with ``settings``) if absent.

        ``embedder`` is a built embedder, or the name of the model the caller chose: an
        existing knowledge base built with another one is an error, and a new one keeps it
        whatever its documents' language. ``store`` (``lancedb`` or ``qdrant``) is the store
        the caller chose: an existing knowledge base with another one is an error (a store
        is chosen when a knowledge base is created).
        """
        folder = Path(path)
        settings = settings or Settings()
        named = embedder if isinstance(embedder, str) else None
        built = None if isinstance(embedder, str) else embedder
        if named:
            settings = replace(settings, embedder=replace(settings.embedder, model=named))
        if store:
            settings = replace(settings, store=replace(settings.store, backend=store))
        if (folder / MANIFEST).exists():
            kb = cls.open(folder, settings, embedder=built, generator=generator)
            if store and store != kb.store_spec.backend:
                raise ConfigError(f"{folder} already uses the {kb.store_spec.backend} store; a "
                                  "store is chosen when a knowledge base is created")
            if named:
                kb.manifest.check_embedder(kb.manifest.embedder_backend, named, kb.path)
                maintenance.keep_embedder(kb.index)  # the documents' language won't change it
            return kb
        s = settings.store
        spec = StoreSpec.from_dict({"backend": s.backend, "url": s.url or None,
                                    "collection": s.collection or None})
        # the settings' embedder, or the multilingual one for a language setting the
        # default cannot embed; left to the default, the first ingest may still switch
        chosen = embedder_settings(settings.embedder, default_embedder_model(settings.embedder))
        emb = built or build_embedder(chosen)
        manifest = Manifest(
            embedder_backend=chosen.backend if built is None else "custom",
            embedder_model=emb.name, dimension=emb.dimension,
            chunk_max_tokens=settings.chunking.max_tokens, chunk_overlap=settings.chunking.overlap,
            store=spec.to_dict(), embedder_precision=str(getattr(emb, "precision", "")),
            embedder_auto=built is None and not named and left_to_default(settings.embedder),
        )
        index = Index.create(folder, manifest, ann_min_rows=settings.retrieval.ann_min_rows,
                             lock_timeout_s=settings.ingest.lock_timeout_s)
        return cls(index, settings, embedder=emb, generator=generator)

    def close(self) -> None:
        """Release the store's connection (qdrant's local mode allows one per folder)."""
        self.index.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_embedder(self, embedder: Embedder) -> None:
        if embedder.name != self.manifest.embedder_model:
            self.manifest.check_embedder(self.manifest.embedder_backend, embedder.name, self.path)
        if embedder.dimension != self.manifest.dimension:
            raise EmbedderMismatchError(
                f"embedder {embedder.name} gives {embedder.dimension}-d vectors but the "
                f"knowledge base {self.path} holds {self.manifest.dimension}-d vectors; rebuild "
                f"them with: ragtune kb reembed --kb {self.path} --embedder {embedder.name}"
            )

    # --- parts, built on first use ----------------------------------------------------------

    @property
    def manifest(self) -> Manifest:
        return self.index.manifest

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            if self.manifest.embedder_backend == "custom":
                raise ConfigError(
                    f"knowledge base {self.path} was built with a custom embedder "
                    f"({self.manifest.embedder_model}); pass it: KnowledgeBase.open(path, "
                    "embedder=...)"
                )
            emb = build_embedder(self._embedder_settings())
            self._check_embedder(emb)
            self._embedder = emb
        return self._embedder

    def _use_embedder(self, embedder: Embedder) -> None:
        """After a switch of embedder (re-embed): queries use the new one."""
        self._embedder = embedder
        self._cached = None

    def _embedder_settings(self) -> EmbedderSettings:
        """The settings that build this knowledge base's embedder (its manifest's)."""
        return replace(self.settings.embedder, backend=self.manifest.embedder_backend,
                       model=self.manifest.embedder_model, precision=self._precision())

    def _embedder_recipe(self) -> Callable[[], Embedder]:
        """How another process builds this embedder (ingest workers): by its settings, or
        a custom embedder sent as it is."""
        from functools import partial

        from ragtune.index.embed_workers import given

        if self.manifest.embedder_backend == "custom":
            return partial(given, self.embedder)
        return partial(build_embedder, self._embedder_settings())

    def _precision(self) -> str:
        """The embedder precision to use: the setting when it names one, else the one the
        stored vectors were computed in, so that queries and documents match (fp32 where
        this CPU has no int8 kernels)."""
        chosen = self.settings.embedder.precision
        if chosen != "auto" or self.manifest.embedder_precision not in ("int8", "fp32"):
            return chosen
        if self.manifest.embedder_precision == "int8" and not int8_supported():
            return "fp32"
        return self.manifest.embedder_precision

    @property
    def answer_embedder(self) -> Embedder:
        """The embedder with a cache of recent texts, for citation checks, the router and
        the judge, which embed the same retrieved sentences answer after answer."""
        if self._cached is None:
            from ragtune.models.embedders import CachedEmbedder

            self._cached = CachedEmbedder(self.embedder)
        return self._cached

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            self._generator = build_generator(self.settings.generator)
        return self._generator

    def generator_for(self, question: str) -> Generator:
        """The generator that answers ``question``: :attr:`generator`, or for a language
        whose bundled grounded adapter is for another bundled model, that model with it
        (``generator.by_language``; see :func:`~ragtune.models.components.language_generator`),
        loaded once."""
        chosen = None if self._given_generator else language_generator(
            self.settings.generator, detect_language(question))
        if chosen is None:
            return self.generator
        key = f"{chosen.model}:{chosen.adapter}"
        if key not in self._by_language:
            self._by_language[key] = build_generator(chosen)
        return self._by_language[key]

    # --- the index ------------------------------------------------------------------------------

    @property
    def store_spec(self) -> StoreSpec:
        return self.index.store_spec

    @property
    def store(self) -> Store:
        """The store as of the last committed version (see :attr:`Index.store`)."""
        return self.index.store

    @property
    def lexical(self) -> BM25Index:
        return self.index.lexical

    @property
    def reader(self) -> ReadView:
        """The committed version in memory: what searches read (see :mod:`.index.reader`)."""
        return self.index.reader

    @property
    def version(self) -> int:
        """The committed store version: answers report it, history lists them."""
        return self.index.version

    def sources(self) -> list[SourceRecord]:
        return self.index.sources()

    def display_names(self) -> dict[str, str]:
        """Each stored source and the name to show for it (see :meth:`Index.display_names`)."""
        return self.index.display_names()

    # --- writing --------------------------------------------------------------------------------

    def ingest(self, paths: Sequence[str | Path], *, prune: bool = True,
               progress: Callable[[int, int], None] | None = None,
               collection: str | None = None, workers: int = 1,
               ray: str | None = None) -> IngestReport:
        """Add, update and (for folders, with ``prune``) remove files; see :mod:`.index.ingest`.

        ``collection`` is recorded as the owner of the files (the server's uploads); without
        it a file keeps the owner it had. Waits up to ``settings.ingest.lock_timeout_s`` for
        another writer. ``workers`` embeds in that many processes, ``ray`` (an address,
        or ``local``) on Ray actors; this process still writes (see
        :mod:`ragtune.index.embed_workers`).
        """
        from ragtune.index.embed_workers import RAY_MIN_BATCH, embedding

        cfg = self.settings.ingest
        switched = maintenance.adopt_language_default(  # Chinese documents, default embedder
            self.index, paths, self.settings.embedder, batch=cfg.batch_chunks)
        if switched is not None:
            self._use_embedder(switched)
        batch = max(cfg.batch_chunks, RAY_MIN_BATCH) if ray else cfg.batch_chunks
        with self.index.write() as store, embedding(
                lambda: self.embedder, self._embedder_recipe(), workers=workers,
                ray=ray) as embedder:
            ingestor = Ingestor(
                self.path, store, embedder, self.index.record(),
                max_tokens=self.manifest.chunk_max_tokens, overlap=self.manifest.chunk_overlap,
                batch_chunks=batch, max_file_bytes=int(cfg.max_file_mb * 1e6),
                checkpoint=lambda log, chunks: self.index.checkpoint(store, log, chunks),
                progress=progress, collection=collection)
            report = ingestor.run(paths, prune=prune)
            changed = bool(report.added or report.updated or report.removed)
            self.index.commit(store, ingestor.log, "ingest", changed=changed,
                              added=len(report.added), updated=len(report.updated),
                              removed=len(report.removed),
                              chunks_embedded=report.chunks_embedded)
        return report

    def remove(self, sources: Sequence[str]) -> list[str]:
        """Remove sources (stored names, paths, or glob patterns); returns what was removed."""
        return maintenance.remove_sources(self.index, sources)

    def verify(self, *, repair: bool = False) -> VerifyReport:
        """Reconcile record, store and lexical index; with ``repair``, fix what can be fixed
        (sources whose chunks are missing or bad are ingested again)."""
        return maintenance.verify(self.index, repair=repair,
                                  reingest=lambda paths: self.ingest(paths, prune=False))

    def reembed(self, embedder: Embedder | str) -> int:
        """Re-embed every chunk with another embedder (built, or a model name); returns the
        number of chunks."""
        emb, backend = maintenance.resolve_embedder(self.settings.embedder, embedder)
        count = maintenance.reembed(self.index, emb, backend,
                                    batch=self.settings.ingest.batch_chunks)
        self._use_embedder(emb)
        return count

    # --- reading --------------------------------------------------------------------------------

    def retriever(self, mode: str | None = None) -> Retriever:
        mode = mode or self.settings.retrieval.mode
        if mode not in MODES:
            raise ConfigError(f"unknown retrieval mode {mode!r}; valid choices: {', '.join(MODES)}")
        if mode == "lexical":
            return LexicalRetriever(self.lexical, self.reader)
        dense = DenseRetriever(self.reader, self.embedder)
        if mode == "dense":
            return dense
        r = self.settings.retrieval
        return HybridRetriever(dense, LexicalRetriever(self.lexical, self.reader),
                               candidates=r.candidates, rrf_k=r.rrf_k, fusion=r.fusion,
                               dense_weight=r.dense_weight,
                               corpus_languages=self._corpus_languages())

    def _corpus_languages(self) -> tuple[str, ...]:
        """The languages of the committed version's chunks (a sample), once per version."""
        reader = self.reader
        if self._languages is None or self._languages[0] is not reader:
            import pyarrow as pa

            texts = reader.column("text")
            picked = sorted({int(i) for i in np.linspace(0, len(texts) - 1, SAMPLE)}
                            if len(texts) else set())
            self._languages = (reader, corpus_languages(
                texts.take(pa.array(picked, type=pa.int64())).to_pylist()))
        return self._languages[1]

    def searcher(self, mode: str | None = None) -> SearchPipeline:
        """The retriever of ``mode`` with the configured reranker and MMR around it."""
        r = self.settings.retrieval
        if r.reranker and self._reranker is None:
            self._reranker = build_reranker(r)  # retrieval.reranker_backend names it
        return SearchPipeline(
            self.retriever(mode), view=self.reader, reranker=self._reranker if r.reranker
            else None, rerank_depth=r.rerank_depth,
            mmr_lambda=r.mmr_lambda if 0.0 <= r.mmr_lambda <= 1.0 else None)

    def search(self, query: str, *, k: int | None = None, mode: str | None = None,
               filter: Filter | None = None) -> list[Hit]:
        """The ``k`` best chunks for ``query``: hybrid (dense + BM25) by default, restricted
        by ``filter``, reranked and diversified when configured."""
        if not query.strip():
            raise ConfigError("the query is empty; give a question or some keywords")
        if k is not None and k < 1:
            raise ConfigError(f"k (-k) must be at least 1, got {k}")
        return self.searcher(mode).retrieve(query, k or self.settings.retrieval.k, filter)

    def expand(self, hits: list[Hit], n: int) -> list[Hit]:
        """Each hit with up to ``n`` neighbouring chunks of its page joined to its text."""
        if n <= 0:
            return hits
        out = []
        for hit in hits:
            around = self.reader.neighbours(hit.chunk, n)
            start, end, text = merge_spans([(c.start, c.end, c.text) for c in around])
            out.append(replace(hit, chunk=replace(hit.chunk, start=start, end=end, text=text)))
        return out

    def tuned_generator(self, adapter: str | Path) -> Generator:
        """The generator with a LoRA ``adapter`` (a run folder), loaded once. With the
        openai backend it is the same server asked for the adapter by name (vLLM's
        ``--lora-modules NAME=DIR``; see :func:`ragtune.models.openai_generator.served_name`)."""
        key = str(Path(adapter).resolve())
        if key not in self._tuned:
            if self.settings.generator.backend == "openai":
                settings = replace(self.settings.generator, adapter=str(adapter))
            else:
                settings = replace(self.settings.generator, backend="local", adapter=key)
            self._tuned[key] = build_generator(settings)
        return self._tuned[key]

    def ask(self, question: str, *, k: int | None = None, mode: str | None = None,
            generator: Generator | None = None, max_tokens: int | None = None,
            filter: Filter | None = None, pipeline: str = "rag",
            adapter: str | Path | None = None, tuned: Generator | None = None,
            router: str | Path | None = None, judge_threshold: float | None = None,
            ) -> Answer:
        """Answer ``question`` with a pipeline (see :mod:`ragtune.pipelines`).

        ``rag`` (default): retrieve, pack a numbered-sources prompt, generate and check the
        citations. ``closed``, ``serial`` and ``parallel`` use the fine-tuned model given
        as ``adapter`` (a ``ragtune tune lora`` run) or ``tuned``. ``layered`` routes with
        the router file ``router`` (default: ``router.json`` in the knowledge base, written
        by ``ragtune router train``; the rule-based router when there is none) and passes
        answers whose support reaches ``judge_threshold`` (default 0.5).
        """
        from ragtune.pipelines import Parts, ask
        from ragtune.pipelines.judge import Judge
        from ragtune.pipelines.router import ROUTER_FILE, load_router
        from ragtune.rag.relevance import min_similarity

        if not question.strip():
            raise ConfigError("the question is empty")
        if k is not None and k < 1:
            raise ConfigError(f"k (-k) must be at least 1, got {k}")
        g = self.settings.generator
        searcher = self.searcher(mode)
        neighbours = self.settings.retrieval.neighbours

        class _Context:  # the searcher, with the filter applied and neighbours joined
            def retrieve(_, query: str, k: int) -> list[Hit]:
                return self.expand(searcher.retrieve(query, k, filter), neighbours)

        if tuned is None and adapter is not None:
            tuned = self.tuned_generator(adapter)
        if router and not Path(router).is_file():
            raise ConfigError(f"router file {router} does not exist; write one with "
                              "`ragtune router train --from RESULTS --out FILE`")
        parts = Parts(
            _Context(), generator or self.generator_for(question), tuned,
            embedder=self.answer_embedder,
            k=k or self.settings.retrieval.k, max_tokens=max_tokens or g.max_tokens,
            temperature=g.temperature, kb_version=self.version, prompt_style=g.prompt,
            source_order=g.source_order, citations_mode=g.citations,
            min_similarity=min_similarity(self.settings.retrieval.min_similarity,
                                          self.manifest.embedder_model),
            sentences=self.settings.retrieval.sentences,
            adapter=str(adapter) if adapter else None,
            router=load_router(Path(router) if router else self.path / ROUTER_FILE),
            judge=Judge(threshold=0.5 if judge_threshold is None else judge_threshold,
                        embedder=self.answer_embedder))
        return ask(parts, question, pipeline)
