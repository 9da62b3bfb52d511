"""Load on ``ragtune serve``: concurrent clients on loopback, with a fake and the real generator.

The server runs as its own process (``ragtune serve``) over a knowledge base of this
repository's docs/ (real MiniLM embeddings, hybrid retrieval). Two runs, same clients and
questions: first with the fake generator (the server's own overhead: HTTP, JSON, retrieval,
packing, citation checks), then with the bundled SmolLM2-135M. Each client posts
``/v1/chat/completions`` in a loop for ``--seconds``. Reported: requests/s, latency
p50/p95/p99, errors, and the server's resident memory after warm-up, at its peak and at the
end (growth = end - after warm-up). The warm-up is the same load for ``--warmup`` seconds, so
that the allocator and the caches reach their working size before memory is measured.

``--distinct`` asks every request a question not asked before (one per section heading of
docs/, about 95), so that no answer comes from llama.cpp's prompt cache; without it the
clients rotate over 8 questions, whose prompts the cache holds after the first round.

With ``--hostile-kb N``, each generator is measured twice on the same server after the
warm-up: the clients alone, then the same clients while one more client posts N KB
questions one after another (the server cuts a question to ``serve.max_question_chars``);
reported: the normal clients' p95 with it against without it (the bound is 2x).

    .venv/bin/python bench/serve_load.py --clients 16 --seconds 60
    .venv/bin/python bench/serve_load.py --generators local --hostile-kb 100
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx
import numpy as np
import psutil

from ragtune.testing import register_fakes

from _common import RESULTS, ROOT, machine, write_result

QUESTIONS = [
    "Which file formats can ragtune ingest?",
    "How do I install the bundled models?",
    "How does hybrid retrieval work?",
    "What does ragtune kb verify do?",
    "How do I fine-tune a LoRA adapter?",
    "How are citations checked?",
    "How do I point a knowledge base at Qdrant?",
    "What does the layered pipeline do?",
]
KEY = "bench-key"


def heading_questions() -> list[str]:
    """One question per section heading of docs/ (``--distinct``)."""
    headings = [line.lstrip("#").strip().strip("`") for path in sorted(ROOT.glob("docs/*.md"))
                for line in path.read_text(encoding="utf-8").splitlines()
                if line.startswith("#")]
    return [f"What does the documentation say about {h}?" for h in dict.fromkeys(headings)]


def build_kb() -> str:
    kb = RESULTS / "serve-load" / "kb"
    if not kb.exists():
        subprocess.run([sys.executable, "-m", "ragtune", "ingest", str(ROOT / "docs"), "--kb",
                        str(kb)], check=True)
    return str(kb)


def start_server(kb: str, generator: str) -> tuple[subprocess.Popen[str], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend, _, parallel = generator.partition(":")  # llamacpp:4: four slots
    env = {**os.environ, "RAGTUNE_GENERATOR_BACKEND": backend,
           "RAGTUNE_GENERATOR_PARALLEL": parallel or "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    if backend == "fake":  # the test fake, registered for the server as a plugin would be
        env["PYTHONPATH"] = register_fakes(RESULTS / "serve-load" / "fakes")
    proc = subprocess.Popen([sys.executable, "-m", "ragtune", "serve", "--kb", kb, "--port",
                             str(port), "--api-key", KEY], stderr=subprocess.PIPE, text=True,
                            env=env, stdout=subprocess.DEVNULL)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "Application startup complete" in line:
            break
    else:
        raise SystemExit(f"the server exited with {proc.wait()}")
    # keep draining the log so the server never blocks on a full pipe
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
    return proc, port


def hostile_question(kb: int) -> str:
    """A question of ``kb`` KB: the demo questions and varied filler, no single repeat."""
    words = " ".join(f"{q} (part {i})" for i, q in enumerate(QUESTIONS * (kb * 8)))
    return words[:kb * 1024]


def load(url: str, clients: int, seconds: float, sample: Callable[[], None] | None = None,
         hostile: str = "") -> tuple[list[float], list[str], float, list[float]]:
    """``clients`` threads posting questions for ``seconds``, and with ``hostile`` one more
    posting that question in a loop: latencies (ms) of answers (200, abstentions among
    them), errors, time, the hostile client's latencies, abstentions (normal, hostile)."""
    headers = {"Authorization": f"Bearer {KEY}"}
    latencies: list[float] = []
    errors: list[str] = []
    slow: list[float] = []
    abstained = [0, 0]  # normal clients, the hostile one
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(i: int) -> None:
        n = i
        with httpx.Client(timeout=600) as c:
            while time.perf_counter() < stop:
                with lock:
                    q = hostile if i < 0 else DISTINCT.pop() if DISTINCT else \
                        QUESTIONS[n % len(QUESTIONS)]
                n += 1
                t = time.perf_counter()
                try:
                    r = c.post(url, headers=headers, json={
                        **BODY, "messages": [{"role": "user", "content": q}]})
                    ok = r.status_code == 200
                    why = "" if ok else f"{r.status_code} {r.text[:200]}"
                    if ok and not r.json()["citations"]:  # answered that it cannot answer
                        abstained[i < 0] += 1
                except httpx.HTTPError as exc:
                    why = repr(exc)
                with lock:
                    (errors.append(why) if why else
                     (slow if i < 0 else latencies).append((time.perf_counter() - t) * 1e3))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    if hostile:
        threads.append(threading.Thread(target=client, args=(-1,)))
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        if sample:
            sample()
        threads[0].join(timeout=1.0)
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - t0, slow, abstained


BODY: dict[str, object] = {"model": "rag"}
DISTINCT: list[str] = []  # --distinct: the questions this server has not been asked yet
ASKED: list[str] = []  # --distinct: all of them, in order, for each server anew


def run(kb: str, generator: str, clients: int, seconds: float, warmup: float,
        hostile_kb: int = 0) -> list[dict[str, object]]:
    """The warmed-up server under ``clients``; with ``hostile_kb``, measured again with
    the hostile client added."""
    proc, port = start_server(kb, generator)
    DISTINCT[:] = ASKED[::-1]  # every server gets the same questions in the same order
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    server = psutil.Process(proc.pid)
    load(url, clients, warmup)
    rows = [measure(url, server, generator, clients, seconds, warmup)]
    if hostile_kb:
        rows.append(measure(url, server, generator, clients, seconds, warmup,
                            hostile_question(hostile_kb)))
    proc.terminate()
    proc.wait(timeout=30)
    return rows


def measure(url: str, server: psutil.Process, generator: str, clients: int, seconds: float,
            warmup: float, hostile: str = "") -> dict[str, object]:
    rss = [server.memory_info().rss]
    start = time.perf_counter()
    mid: list[int] = []

    def sample() -> None:
        rss.append(server.memory_info().rss)
        if not mid and time.perf_counter() - start > seconds / 2:
            mid.append(rss[-1])

    latencies, errors, elapsed, slow, abstained = load(url, clients, seconds, sample, hostile)
    rss.append(server.memory_info().rss)
    lat = np.array(latencies) if latencies else np.array([np.nan])
    mb = 2**20
    return {"generator": generator, "clients": clients, "seconds": round(elapsed, 1),
            "hostile_kb": len(hostile) // 1024, "hostile_requests": len(slow),
            "hostile_p50_ms": float(np.median(slow)) if slow else None,
            "warmup_s": warmup, "requests": len(latencies), "errors": len(errors),
            "abstained": abstained[0], "hostile_abstained": abstained[1],
            "error_sample": errors[:3], "rps": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99)), "rss_start_mb": rss[0] / mb,
            "rss_mid_mb": (mid[0] if mid else rss[-1]) / mb, "rss_peak_mb": max(rss) / mb,
            "rss_end_mb": rss[-1] / mb, "rss_growth_mb": (rss[-1] - rss[0]) / mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=20)
    parser.add_argument("--hostile-kb", type=int, default=0,
                        help="Measure each generator again with one more client posting "
                             "questions of this many KB.")
    parser.add_argument("--generators", default="fake,local",
                        help="Runs to make, in order (llamacpp:4: llama.cpp with 4 slots); "
                             "the summary line needs fake and local.")
    parser.add_argument("--distinct", action="store_true",
                        help="Ask every request a question not asked before (from docs/' "
                             "headings), so that no prompt is in llama.cpp's cache.")
    args = parser.parse_args()
    BODY["max_tokens"] = args.max_tokens
    if args.distinct:
        ASKED.extend(heading_questions())
    kb = build_kb()
    rows = [row for g in args.generators.split(",")
            for row in run(kb, g, args.clients, args.seconds, args.warmup, args.hostile_kb)]
    print(f"\n{args.clients} clients, {args.seconds:.0f} s each, max_tokens {args.max_tokens}")
    print("| generator | requests | req/s | p50 ms | p95 ms | p99 ms | errors | RSS after "
          "warm-up → half-way → end, peak (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        name = f"{r['generator']} + one {r['hostile_kb']} KB client" if r["hostile_kb"] else \
            r["generator"]
        print(f"| {name} | {r['requests']} | {r['rps']:.1f} | {r['p50_ms']:.0f} | "
              f"{r['p95_ms']:.0f} | {r['p99_ms']:.0f} | {r['errors']} | "
              f"{r['rss_start_mb']:.0f} → {r['rss_mid_mb']:.0f} → {r['rss_end_mb']:.0f}, "
              f"{r['rss_peak_mb']:.0f} |")
    by = {r["generator"]: r for r in rows if not r["hostile_kb"]}
    for r in rows:
        if r["hostile_kb"]:
            ratio = r["p95_ms"] / by[r["generator"]]["p95_ms"]
            print(f"{r['generator']}: normal clients' p95 with one {r['hostile_kb']} KB client "
                  f"{ratio:.2f}x of without it ({'within' if ratio <= 2 else 'OVER'} the 2x "
                  f"bound); its {r['hostile_requests']} requests took "
                  f"{r['hostile_p50_ms'] or float('nan'):.0f} ms at p50, "
                  f"{r['hostile_abstained']} of them abstained")
    if {"fake", "local"} <= set(by):
        print(f"server overhead share of a real request at p50: "
              f"{by['fake']['p50_ms'] / by['local']['p50_ms']:.1%} (fake p50 / real p50)")
    path = write_result("serve_load", {"machine": machine(), "runs": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
