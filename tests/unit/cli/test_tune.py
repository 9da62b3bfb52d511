"""``ragtune tune prepare`` with a fake tokenizer in place of the base model's."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ragtune.cli import app
from ragtune.errors import DataError
from ragtune.tune import data as tune_data

runner = CliRunner()


class WordTokenizer:
    def apply_chat_template(self, conversation, *, tokenize=True, add_generation_prompt=False):
        text = " ".join(f"<{m['role']}> {m['content']} </s>" for m in conversation)
        return (text + (" <assistant>" if add_generation_prompt else "")).split()


@pytest.fixture
def fake_tokenizer(monkeypatch):
    loaded = []

    def load(base):
        loaded.append(base)
        return WordTokenizer()

    monkeypatch.setattr(tune_data, "load_tokenizer", load)
    return loaded


def test_prepare_prints_a_summary_and_writes_the_folder(fake_tokenizer, tmp_path):
    data = tmp_path / "legal.json"
    data.write_text(json.dumps({f"k{i}": {"doc": f"d{i % 4}", "text": f"clause {i}",
                                          "summary": f"plain {i}"} for i in range(20)}))
    out = tmp_path / "prepared"
    result = runner.invoke(app, ["tune", "prepare", str(data), "--out", str(out),
                                 "--template", "Summarise:\\n{text}", "--target-field",
                                 "summary", "--group-by", "doc", "--split", "0.25",
                                 "--base", "my-model"])
    assert result.exit_code == 0, result.output
    assert fake_tokenizer == ["my-model"]
    assert "legal.json: template, 20 records" in result.output
    assert "20 read: 20 valid, 0 invalid, 0 duplicates dropped" in result.output
    assert "split: 15 train, 5 eval" in result.output
    assert "whole groups by 'doc': 3 in train, 1 in eval" in result.output
    assert "tokens with the my-model chat template:" in result.output
    first = json.loads((out / "train.jsonl").read_text().splitlines()[0])
    assert first["messages"][0] == {"role": "user", "content": "Summarise:\nclause 0"}

    result = runner.invoke(app, ["tune", "prepare", str(data), "--out", str(out), "--format",
                                 "template", "--template", "{text}", "--target-field",
                                 "summary", "--split", "0", "--json"])
    info = json.loads(result.output)
    assert info["counts"]["train"] == 20 and info["tokens"]["eval"]["examples"] == 0


def test_bad_data_fails_before_loading_the_tokenizer(fake_tokenizer, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n{"instruction": "q", "output": ""}\n')
    result = runner.invoke(app, ["tune", "prepare", str(data), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert isinstance(result.exception, DataError)
    assert fake_tokenizer == [] and not (tmp_path / "o").exists()

    result = runner.invoke(app, ["tune", "prepare", str(data), "--out", str(tmp_path / "o"),
                                 "--skip-invalid", "--split", "0"])
    assert result.exit_code == 0, result.output
    assert "1 invalid (skipped)" in result.output
    assert "line 2: field 'output' must be a non-empty string" in result.output


def test_errors_are_one_line_with_the_file_line_and_field(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n{"instruction": "q", "output": 3}\n')
    proc = subprocess.run([sys.executable, "-m", "ragtune", "tune", "prepare", str(data),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: 1 of 2 records are invalid:")
    assert f"{data} line 2: field 'output' must be a non-empty string, got a number" \
        in proc.stderr
    assert "Traceback" not in proc.stderr
