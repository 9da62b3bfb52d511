"""The README's Python example and the CLI, as a user runs them."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_python_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## Quickstart: Python\n\n```python\n(.*?)```", readme, re.S).group(1)
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "added" in proc.stdout and "docs/ingest.md" in proc.stdout


def test_cli_ingest_and_ask_json(tmp_path):
    env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    kb = tmp_path / "kb"
    run = [sys.executable, "-m", "ragtune"]
    proc = subprocess.run([*run, "ingest", str(ROOT / "docs"), "--kb", str(kb), "--json"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["added"] == len(list((ROOT / "docs").glob("*.md")))
    proc = subprocess.run([*run, "ask", "Which file formats can ragtune ingest?", "--kb",
                           str(kb), "--json"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["answer"] and data["citations"]
    assert data["citations"][0]["source"].endswith("docs/ingest.md")
    assert data["timings"]["total_ms"] > 0 and data["prompt_tokens"] > 0
