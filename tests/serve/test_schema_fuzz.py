"""Schemathesis against a live server's /openapi.json: generated requests, no 5xx.

Runs schemathesis's own command line (its pytest plugin does not load under this pytest),
so the run is the one a user would make: ``st run URL/openapi.json --checks
not_a_server_error``.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from ragtune.serve import ServeSettings, create_app
from tests.serve.conftest import LiveServer


def test_no_server_errors(kb, tmp_path):
    st = shutil.which("st") or str(Path(sys.executable).with_name("st"))
    app = create_app(ServeSettings(kb=kb.path), kb=kb)
    with LiveServer(app) as server:
        run = subprocess.run(
            [st, "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error",
             "--max-examples", "25", "--workers", "1", "--phases", "examples,coverage,fuzzing",
             "--report-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "Tested: 10" in out  # every operation of the document
    generated = re.search(r"(\d+) generated, (\d+) passed", out)
    assert generated and generated.group(1) == generated.group(2) and int(generated.group(1)) > 100
