"""Latency of ``ask`` on the SciFact knowledge base, step by step, and the memory of
``ragtune serve`` with the default models.

SciFact test questions are asked one at a time (rag pipeline, hybrid retrieval, k=5,
greedy) through ``KnowledgeBase.ask`` with the bundled models. Each answer is split into:
query embedding (the embedder's first call), search (the rest of retrieval), prompt
building, prefill (until the decoder's first token), decode (the other tokens) and the
citation check. p50 and p95 are printed beside the article's figures for a RAG call
(retrieval 100 ms + LLM 200 ms).

Then ``ragtune serve`` is started on the same knowledge base with the default models and
answers ``--serve-requests`` chat requests one after another; its resident memory is
sampled every 50 ms and the peak reported.

The knowledge base is the one ``bench/retrieval_beir.py`` builds (``--kb`` to choose).

``--engines local,llamacpp`` first compares the generator engines end to end, with the
default settings (the bundled grounded adapter, its answer lengths): every question is
answered by each engine in turn (A B A B, one warm-up answer each), on the demo knowledge
base (``make demo``'s, built from ``docs/``, with ``DEMO_QUESTIONS``) and on SciFact.
Each answer is streamed through the generator, so time to first token, decode tokens/s
after it and the total of ``ask`` are measured the same way for every engine; the share
of answers identical to the first engine's is reported.

    python bench/ask_latency.py [--questions 30] [--max-tokens 64] [--decoder auto]
        [--engines local,llamacpp] [--engines-only]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from ragtune import KnowledgeBase
from ragtune.config import Settings
from ragtune.evaluate.datasets import load_beir
from ragtune.models.embedders import SentenceTransformerEmbedder
from ragtune.models.local_generator import LocalGenerator
from serve_load import KEY, start_server

from _common import RESULTS, ROOT, data_dir, require, write_result

ARTICLE = {"retrieval": 100.0, "llm": 200.0}  # ms, the article's RAG call


class TimedEmbedder:
    """The embedder, with the duration of each call kept in ``calls`` (ms)."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner, self.name, self.dimension = inner, inner.name, inner.dimension
        self.languages = inner.languages
        self.calls: list[float] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        start = time.perf_counter()
        out = self.inner.embed(texts)
        self.calls.append((time.perf_counter() - start) * 1e3)
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)


class TimedDecoder:
    """The generator's decoder, with the time from the call to its first token kept."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.prefill_ms = 0.0

    def tokens(self, *args: Any, **kwargs: Any) -> Iterator[int]:
        start = time.perf_counter()
        for i, token in enumerate(self.inner.tokens(*args, **kwargs)):
            if i == 0:
                self.prefill_ms = (time.perf_counter() - start) * 1e3
            yield token


DEMO_QUESTIONS = (
    "How do I install the bundled models?", "Which file formats can ragtune ingest?",
    "How do I start the server?", "What does ragtune kb verify check?",
    "How are PDF files read?", "Which vector stores can ragtune use?",
    "How do I fine-tune a LoRA adapter?", "What does the compare command report?",
)


class StreamedGenerator:
    """A generator answering through its own ``stream``, timing the first piece
    (``ttft_ms``) and the whole answer (``total_ms``); everything else is the inner one's."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.ttft_ms = self.total_ms = 0.0
        self.tokens = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def generate(self, messages: Any, *, max_tokens: int, temperature: float = 0.0) -> Any:
        from ragtune.types import Completion

        start = time.perf_counter()
        pieces = []
        for piece in self.inner.stream(messages, max_tokens=max_tokens,
                                       temperature=temperature):
            if not pieces:
                self.ttft_ms = (time.perf_counter() - start) * 1e3
            pieces.append(piece)
        self.total_ms = (time.perf_counter() - start) * 1e3
        text = "".join(pieces).strip()
        self.tokens = len(self.inner.tokenizer(text, add_special_tokens=False)["input_ids"])
        return Completion(text=text, prompt_tokens=self.inner.count_tokens(messages),
                          completion_tokens=self.tokens)


def engine(settings: Any, name: str) -> Any:
    """The generator of backend ``name`` (``local``, ``llamacpp``), or ``backend/model``
    (``llamacpp/gemma-3-270m``) for another model than the settings name, with its own
    grounded adapter."""
    from ragtune.models.components import build_generator

    backend, _, model = name.partition("/")
    return build_generator(replace(settings.generator, backend=backend,
                                   model=model or settings.generator.model))


def compare_engines(kb_path: str, questions: list[str], engines: list[str],
                    max_tokens: int) -> dict[str, dict[str, Any]]:
    """Per engine: p50/p95 of time to first token, total ``ask`` seconds, decode tokens/s,
    and the answers, each question asked of every engine in turn."""
    from ragtune import load_settings

    settings = load_settings()
    generators = {e: StreamedGenerator(engine(settings, e)) for e in engines}
    kb = KnowledgeBase.open(kb_path, settings)
    rows: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
    for e in engines:  # warm: index loaded, first-call costs paid
        kb.ask(questions[0], generator=generators[e], max_tokens=max_tokens)  # type: ignore[arg-type]
    for q in questions:
        for e, gen in generators.items():
            answer = kb.ask(q, generator=gen, max_tokens=max_tokens)  # type: ignore[arg-type]
            rows[e].append({"ttft": gen.ttft_ms, "generate": gen.total_ms,
                            "total": answer.timings["total_ms"], "tokens": gen.tokens,
                            "prompt_tokens": answer.prompt_tokens, "answer": answer.text})
    kb.close()
    first = rows[engines[0]]
    out = {}
    for e, r in rows.items():
        decode_s = sum(max(0.0, x["generate"] - x["ttft"]) for x in r) / 1e3
        decoded = sum(max(0, x["tokens"] - 1) for x in r)
        out[e] = {"ttft_ms": percentiles([x["ttft"] for x in r]),
                  "total_ms": percentiles([x["total"] for x in r]),
                  "decode_tokens_per_s": decoded / decode_s if decode_s else None,
                  "tokens_p50": float(np.percentile([x["tokens"] for x in r], 50)),
                  "prompt_tokens_p50": float(np.percentile([x["prompt_tokens"] for x in r], 50)),
                  "same_answer": sum(a["answer"] == b["answer"] for a, b in
                                     zip(r, first, strict=True)) / len(r),
                  "answers": [x["answer"] for x in r]}
    return out


def print_engines(label: str, results: dict[str, dict[str, Any]]) -> None:
    base = next(iter(results.values()))["total_ms"][0]
    print(f"{label}\n| engine | time to first token p50 ms | decode tokens/s | ask p50 s | "
          f"ask p95 s | x first engine (p50) | answer tokens p50 | same answer |\n"
          f"|{'---|' * 8}")
    for e, r in results.items():
        rate = r["decode_tokens_per_s"]
        print(f"| {e} | {r['ttft_ms'][0]:.0f} | {'–' if rate is None else f'{rate:.1f}'} | "
              f"{r['total_ms'][0] / 1e3:.2f} | {r['total_ms'][1] / 1e3:.2f} | "
              f"{base / r['total_ms'][0]:.2f} | {r['tokens_p50']:.0f} | "
              f"{r['same_answer']:.0%} |")


def percentiles(values: list[float]) -> tuple[float, float]:
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def ask_steps(kb_path: str, questions: list[str], max_tokens: int, decoder: str,
              skipped: list[str]) -> dict[str, tuple[float, float]]:
    """p50 and p95 of each step of ``ask`` on the answers that reached the model; the
    questions answered by abstaining before generating go to ``skipped``."""
    settings = Settings()
    settings = replace(settings, generator=replace(settings.generator, decoder=decoder))
    embedder = TimedEmbedder(SentenceTransformerEmbedder("all-minilm-l6-v2"))
    generator = LocalGenerator.from_settings(settings.generator)
    if generator.decoder is None:
        raise SystemExit(f"decoder {decoder!r} has no fast loop to time prefill and decode")
    timed = TimedDecoder(generator.decoder)
    generator.decoder = timed  # type: ignore[assignment]
    kb = KnowledgeBase.open(kb_path, settings, embedder=embedder, generator=generator)  # type: ignore[arg-type]
    kb.ask(questions[0], max_tokens=4)  # load the index and warm the caches
    steps: dict[str, list[float]] = {}
    for q in questions:
        embedder.calls.clear()
        answer = kb.ask(q, max_tokens=max_tokens)
        t = answer.timings
        if "prompt_ms" not in t:  # abstained on similarity before the model: no steps
            skipped.append(q)
            continue
        row = {"query embedding": embedder.calls[0],
               "search": t["retrieve_ms"] - embedder.calls[0],
               "prompt": t["prompt_ms"], "prefill": timed.prefill_ms,
               "decode": t["generate_ms"] - timed.prefill_ms, "citations": t["cite_ms"],
               "total": t["total_ms"], "completion tokens": float(answer.completion_tokens),
               "prompt tokens": float(answer.prompt_tokens)}
        for key, value in row.items():
            steps.setdefault(key, []).append(value)
    return {k: percentiles(v) for k, v in steps.items()}


def serve_memory(kb_path: str, questions: list[str], requests: int, max_tokens: int
                 ) -> dict[str, float]:
    proc, port = start_server(kb_path, "local")
    server = psutil.Process(proc.pid)
    rss = [server.memory_info().rss]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss.append(server.memory_info().rss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with httpx.Client(timeout=600) as client:
            for q in questions[:requests]:
                r = client.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                                headers={"Authorization": f"Bearer {KEY}"},
                                json={"model": "rag", "max_tokens": max_tokens,
                                      "messages": [{"role": "user", "content": q}]})
                r.raise_for_status()
    finally:
        done.set()
        sampler.join()
        proc.terminate()
        proc.wait(timeout=60)
    mb = 2**20
    return {"requests": float(requests), "rss_start_mb": rss[0] / mb,
            "rss_peak_mb": max(rss) / mb, "rss_end_mb": rss[-1] / mb}


def scifact_questions(n: int) -> list[str]:
    _, queries, qrels = load_beir(require(data_dir() / "scifact"), "test")
    return [queries[q] for q in qrels if q in queries][:n]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kb", default=str(RESULTS / "scifact-kb"))
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--decoder", default="auto")
    parser.add_argument("--serve-requests", type=int, default=10)
    parser.add_argument("--engines", default="",
                        help="Compare these generator engines end to end first, e.g. "
                             "local,llamacpp or local,llamacpp/gemma-3-270m.")
    parser.add_argument("--engines-only", action="store_true")
    parser.add_argument("--demo-kb", default=str(ROOT / ".ragtune" / "demo-kb"))
    args = parser.parse_args()
    if args.engines:
        from answer_quality import cpu_flags

        engines = args.engines.split(",")
        compared = {}
        print(f"CPU: {cpu_flags()}; torch CPU capability "
              f"{os.environ.get('ATEN_CPU_CAPABILITY', 'native')}")
        for label, path, qs in (
                ("demo knowledge base", args.demo_kb, list(DEMO_QUESTIONS)),
                ("SciFact", args.kb, scifact_questions(args.questions))):
            if not (Path(path) / "manifest.json").exists():
                print(f"skipped {label}: no knowledge base at {path}")
                continue
            compared[label] = compare_engines(path, qs, engines, args.max_tokens)
            print_engines(f"{label}, {len(qs)} questions", compared[label])
        # ATEN_CPU_CAPABILITY=avx2 runs torch as on an AVX2
        # machine: the result is kept apart
        capability = os.environ.get("ATEN_CPU_CAPABILITY", "")
        write_result("ask_latency_engines" + (f"_{capability}" if capability else ""),
                     {"cpu": cpu_flags(), "aten_cpu_capability": capability or None,
                      "max_tokens": args.max_tokens, "engines": compared})
        if args.engines_only:
            return
    if not (Path(args.kb) / "manifest.json").exists():
        raise SystemExit(f"no knowledge base at {args.kb}; build the SciFact one with: "
                         "python bench/retrieval_beir.py")
    questions = scifact_questions(args.questions)

    skipped: list[str] = []
    steps = ask_steps(args.kb, questions, args.max_tokens, args.decoder, skipped)
    print(f"{len(questions)} SciFact questions, k=5, up to {args.max_tokens} new tokens, "
          f"decoder {args.decoder}; {len(skipped)} abstained before generating "
          "(retrieval.min_similarity) and are not in the table")
    print("| step | p50 ms | p95 ms |")
    print("|---|---|---|")
    for name, (p50, p95) in steps.items():
        print(f"| {name} | {p50:.0f} | {p95:.0f} |")
    retrieval = steps["query embedding"][0] + steps["search"][0]
    llm = steps["prefill"][0] + steps["decode"][0]
    print(f"retrieval p50 {retrieval:.0f} ms (article: {ARTICLE['retrieval']:.0f} ms), "
          f"LLM p50 {llm:.0f} ms (article: {ARTICLE['llm']:.0f} ms)")
    memory = serve_memory(args.kb, questions, args.serve_requests, args.max_tokens)
    print(f"ragtune serve: RSS {memory['rss_start_mb']:.0f} MB after start-up, peak "
          f"{memory['rss_peak_mb']:.0f} MB over {args.serve_requests} answers")
    write_result("ask_latency", {"questions": len(questions), "max_tokens": args.max_tokens,
                                 "decoder": args.decoder, "article_ms": ARTICLE,
                                 "abstained_before_generating": len(skipped),
                                 "steps_ms": {k: {"p50": a, "p95": b}
                                              for k, (a, b) in steps.items()},
                                 "serve": memory})
    print(json.dumps(memory))


if __name__ == "__main__":
    main()
