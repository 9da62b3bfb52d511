"""Incremental sync speed: first ingest vs re-ingest with nothing changed, 10 files edited,
10 files deleted, on the 2,067 SQuAD v1.1 dev paragraphs written out as text files.

The baseline is the first (full) ingest, measured in the same run; each sync is reported
as a share of it. Re-ingest is timed both through the Python API and as the CLI command a
user runs (which adds interpreter start-up and imports).

    python bench/sync_speed.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

from ragtune import KnowledgeBase

from _common import RESULTS, data_dir, require, write_result


def write_corpus(folder, squad_path) -> int:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    data = json.loads(squad_path.read_text(encoding="utf-8"))["data"]
    n = 0
    for article in data:
        for i, paragraph in enumerate(article["paragraphs"]):
            name = f"{article['title'][:60]}_{i:03d}.txt".replace("/", "_")
            (folder / name).write_text(paragraph["context"], encoding="utf-8")
            n += 1
    return n


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    squad = require(data_dir() / "squad_v1.1" / "dev-v1.1.json")
    corpus = RESULTS / "sync_corpus"
    kb_path = RESULTS / "sync-kb"
    files = write_corpus(corpus, squad)
    shutil.rmtree(kb_path, ignore_errors=True)

    rows = []
    first, t_first = timed(lambda: KnowledgeBase.create(kb_path).ingest([corpus]))
    rows.append(("first ingest", t_first, first))
    again, t_again = timed(lambda: KnowledgeBase.open(kb_path).ingest([corpus]))
    rows.append(("re-ingest, nothing changed (API)", t_again, again))
    cli = [sys.executable, "-m", "ragtune", "ingest", str(corpus), "--kb", str(kb_path),
           "--json", "--quiet"]
    proc, t_cli = timed(lambda: subprocess.run(cli, capture_output=True, text=True, check=True,
                                               env={**os.environ}))
    cli_report = json.loads(proc.stdout)

    names = sorted(p.name for p in corpus.iterdir())
    edited = names[100:110]
    edited_chunks_before = sum(
        len(r.chunk_ids) for r in KnowledgeBase.open(kb_path).sources()
        if r.source.rsplit("/", 1)[-1] in edited)
    for name in edited:
        with (corpus / name).open("a", encoding="utf-8") as f:
            f.write(" This sentence was added to the end of the paragraph for the benchmark.")
    edit, t_edit = timed(lambda: KnowledgeBase.open(kb_path).ingest([corpus]))
    rows.append(("after editing 10 files", t_edit, edit))
    for name in names[200:210]:
        (corpus / name).unlink()
    delete, t_delete = timed(lambda: KnowledgeBase.open(kb_path).ingest([corpus]))
    rows.append(("after deleting 10 files", t_delete, delete))
    verified = KnowledgeBase.open(kb_path).verify()

    print(f"\n{files} files, {first.chunks_total} chunks after the first ingest\n")
    print("| step | seconds | share of first ingest | added | updated | unchanged | removed "
          "| chunks embedded |")
    print("|---|---|---|---|---|---|---|---|")
    for name, seconds, r in rows:
        print(f"| {name} | {seconds:.2f} | {seconds / t_first:.2%} | {len(r.added)} | "
              f"{len(r.updated)} | {len(r.unchanged)} | {len(r.removed)} | "
              f"{r.chunks_embedded} |")
    print(f"| re-ingest, nothing changed (CLI, whole command) | {t_cli:.2f} | "
          f"{t_cli / t_first:.2%} | {cli_report['added']} | {cli_report['updated']} | "
          f"{cli_report['unchanged']} | {cli_report['removed']} | "
          f"{cli_report['chunks_embedded']} |")
    print(f"\nedited files held {edited_chunks_before} chunks before the edit; "
          f"{edit.chunks_embedded} embedded, {edit.chunks_reused} reused; "
          f"kb verify: {'ok' if verified.ok else verified.problems}")
    path = write_result("sync_speed", {
        "files": files, "chunks": first.chunks_total,
        "steps": [{"step": n, "seconds": s, "share_of_first": s / t_first, **r.to_dict()}
                  for n, s, r in rows],
        "cli_reingest_seconds": t_cli, "edited_chunks_before": edited_chunks_before,
        "verify_ok": verified.ok,
    })
    print(f"written: {path}")


if __name__ == "__main__":
    main()
