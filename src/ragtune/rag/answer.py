"""One RAG answer: retrieve, pack, generate, cite, with timings."""

from __future__ import annotations

import re
import time
from dataclasses import replace

from ragtune.errors import ConfigError
from ragtune.models.protocol import Embedder, Generator
from ragtune.rag.citations import MARKER, analyse, cite, inline
from ragtune.rag.compress import select_sentences
from ragtune.rag.injection import suspicious
from ragtune.rag.packing import pack
from ragtune.rag.prompts import (
    ABSTAIN,
    ORDERS,
    STYLES,
    build_messages,
    detect_language,
    is_abstention,
)
from ragtune.rag.relevance import Relevance, best_similarity, relevance
from ragtune.rag.spans import close_code, complete_list, complete_phrase
from ragtune.retrieve.protocol import Retriever
from ragtune.types import Answer, Hit

CITATION_MODES = ("inline", "strict", "model")

# the parallel pipeline's closed-book draft, shown after the question
DRAFT = {
    "en": ("A draft answer written from memory, which may be wrong: {draft}\n"
           "Keep only what the sources support, correct the rest, and cite the sources."),
    "zh": ("凭记忆写的草稿答案（可能有误）：{draft}\n"
           "只保留资料支持的内容，改正其余部分，并标注引用。"),
}


def answer(
    question: str,
    retriever: Retriever,
    generator: Generator,
    *,
    k: int = 5,
    max_tokens: int = 96,
    temperature: float = 0.0,
    embedder: Embedder | None = None,
    kb_version: int | None = None,
    prompt_style: str | None = None,
    source_order: str = "best-last",
    citations_mode: str = "inline",
    min_similarity: float | None = None,
    sentences: int = 0,
) -> Answer:
    """Answer ``question`` from the top ``k`` retrieved chunks, with checked citations.

    ``embedder`` (the knowledge base's) adds semantic support to the citation check.
    ``prompt_style`` is ``full`` or ``compact`` (see :func:`ragtune.rag.prompts.build_messages`);
    by default the generator's own ``prompt_style`` attribute, else ``full``.
    Timings are milliseconds: ``retrieve_ms``, ``prompt_ms`` (packing), ``generate_ms``,
    ``cite_ms``, ``total_ms``.
    """
    t0 = time.perf_counter()
    hits = retriever.retrieve(question, k)
    retrieve_ms = (time.perf_counter() - t0) * 1e3
    result = answer_from_hits(
        question, hits, generator, max_tokens=max_tokens, temperature=temperature,
        embedder=embedder, kb_version=kb_version, prompt_style=prompt_style,
        source_order=source_order, citations_mode=citations_mode,
        min_similarity=min_similarity, sentences=sentences)
    timings = {"retrieve_ms": retrieve_ms, **result.timings}
    timings["total_ms"] = (time.perf_counter() - t0) * 1e3
    return replace(result, timings=timings, steps=("retrieve", *result.steps))


def answer_from_hits(
    question: str,
    hits: list[Hit],
    generator: Generator,
    *,
    max_tokens: int = 96,
    temperature: float = 0.0,
    embedder: Embedder | None = None,
    kb_version: int | None = None,
    prompt_style: str | None = None,
    source_order: str = "best-last",
    draft: str | None = None,
    citations_mode: str = "inline",
    min_similarity: float | None = None,
    sentences: int = 0,
) -> Answer:
    """Answer from hits already retrieved: pack, generate, cite.

    ``citations_mode``: ``inline`` ends every sentence that a source supports with that
    source's ``[n]`` where the model wrote none, and lists the sentences no source supports
    in ``Answer.unsupported``; ``strict`` also drops those sentences (an answer with none
    left abstains) and leaves out of the prompt every source with instruction-like text
    (:mod:`ragtune.rag.injection`); ``model`` leaves the text as the model wrote it. An
    answer that is the abstention (``The sources do not say.``) is marked ``abstained``
    and cites nothing.

    ``draft`` (a closed-book answer from the fine-tuned model) is shown after the question
    for the generator to keep what the sources support and correct the rest.

    ``min_similarity``: when neither a hit's dense (cosine) score nor, with ``embedder``,
    one of its sentences' reaches it, and no hit holds every term of the question, the
    answer abstains without generating (:mod:`ragtune.rag.relevance`); ``similarity``
    records the best measured.

    ``sentences``: each text chunk is shown cut to this many sentences nearest the
    question (:mod:`ragtune.rag.compress`; needs ``embedder``); 0 shows chunks whole.
    """
    t1 = time.perf_counter()
    lang = detect_language(question)
    relevant = (Relevance(best_similarity(hits)) if min_similarity is None  # no gate
                else relevance(question, hits, embedder, min_similarity))
    similarity = relevant.similarity
    if not relevant.passes(min_similarity):
        return Answer(
            question=question, text=ABSTAIN[lang], citations=(), abstained=True,
            adapter=getattr(generator, "adapter_name", None), language=lang,
            kb_version=kb_version, steps=("relevance",), similarity=similarity,
            timings={"total_ms": (time.perf_counter() - t1) * 1e3},
            notes=(f"no source is close enough to the question to answer from (best "
                   f"similarity {similarity:.2f}, below retrieval.min_similarity "
                   f"{min_similarity:g}, and none holds every term of the question)",))
    style = prompt_style or str(getattr(generator, "prompt_style", "full"))
    if style not in STYLES:
        raise ConfigError(f"unknown prompt style {style!r}; valid choices: {', '.join(STYLES)}")
    if citations_mode not in CITATION_MODES:
        raise ConfigError(f"unknown citations mode {citations_mode!r}; valid choices: "
                          f"{', '.join(CITATION_MODES)}")
    if source_order not in ORDERS:
        raise ConfigError(f"unknown source order {source_order!r}; valid choices: "
                          f"{', '.join(ORDERS)}")
    if citations_mode == "strict":  # sources that talk to the model are not shown to it
        hits = [h for h in hits if not suspicious(h.chunk.text)]
    if sentences and embedder is not None:
        hits = select_sentences(question, hits, sentences, embedder)
    reserve = max_tokens + (len(draft) // 2 if draft else 0)
    kept, dropped, _ = pack(question, hits, generator, reserve=reserve, lang=lang,
                            style=style, order=source_order)
    messages = build_messages(question, [h.chunk for h in kept], lang, style, source_order)
    if draft:
        messages[-1] = {"role": "user", "content": messages[-1]["content"] + "\n\n"
                        + DRAFT[lang].format(draft=draft.strip())}
    tp = time.perf_counter()
    completion = generator.generate(messages, max_tokens=max_tokens, temperature=temperature)
    t2 = time.perf_counter()
    text, abstained = completion.text, is_abstention(completion.text)
    notes: list[str] = []
    if abstained:  # as the question's language writes it, whatever case the model used
        text = ABSTAIN[lang]
    elif not MARKER.sub("", text).strip(" \t\n.,;:"):
        notes.append("the model wrote no answer" + (", only a citation" if text.strip() else ""))
        text, abstained = ABSTAIN[lang], True
    if not abstained and getattr(generator, "one_answer", False):
        # a grounded adapter's one span, completed where it stops too early: the code
        # span it opens closed, the clause it breaks off finished, the list it begins
        # given whole (rag.spans)
        shown = [h.chunk.text for h in kept]
        text = complete_list(complete_phrase(close_code(text, shown), shown), shown,
                             question)
    unsupported: list[str] = []
    if abstained:
        citations = []
    else:
        sources = [h.chunk for h in kept]
        analysis = analyse(text, sources, embedder)
        if citations_mode == "strict":
            # the supported sentences as the model wrote them, checked again on their own
            text, unsupported = inline(text, analysis, strict=True, mark=False)
            analysis = analyse(text, sources, embedder) if unsupported else analysis
        if citations_mode != "model":
            before = text
            text, more = inline(text, analysis)
            unsupported = unsupported or more
            if not text.strip():  # strict, and nothing was supported
                text, abstained = ABSTAIN[lang], True
            elif text != before:  # markers added or re-pointed: cite what the text says
                analysis = analyse(text, sources, embedder)
        citations = cite(text, kept, embedder, analysis=analysis) if not abstained else []
        # ``marked``: the model itself wrote that source's number
        written = {int(n) for m in MARKER.findall(completion.text) for n in re.findall(r"\d+", m)}
        citations = [replace(c, marked=c.marked and c.n in written) for c in citations]
    t3 = time.perf_counter()
    return Answer(
        question=question, text=text, citations=tuple(citations),
        unsupported=tuple(unsupported), abstained=abstained,
        adapter=getattr(generator, "adapter_name", None), dropped=tuple(dropped),
        timings={"prompt_ms": (tp - t1) * 1e3, "generate_ms": (t2 - tp) * 1e3,
                 "cite_ms": (t3 - t2) * 1e3, "total_ms": (t3 - t1) * 1e3},
        prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
        language=lang, kb_version=kb_version, steps=("prompt", "generate", "cite"),
        context=tuple(h.chunk for h in kept),
        abstain_probability=getattr(completion, "abstain_probability", None),
        similarity=similarity, notes=tuple(notes),
    )
