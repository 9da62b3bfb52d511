"""``ragtune tune prepare / lora / export`` and ``ragtune generate --adapter`` end to end on
the tiny random Llama (``tiny_model`` in tests/conftest.py), through the real CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from ragtune.cli import app
from ragtune.errors import ConfigError

runner = CliRunner()

PAIRS = [("france", "paris"), ("germany", "berlin"), ("spain", "madrid"), ("italy", "rome")]
QUESTIONS = ["what is the capital of {} ?", "what is the capital city of {} ?",
             "the capital of {} is what city ?"]


def invoke(*args: str | Path) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def lora_args(data: Path, out: Path, tiny: Path) -> list[str | Path]:
    return ["tune", "lora", "--data", data, "--out", out, "--base", tiny, "--max-steps", "4",
            "--eval-every", "2", "--eval-samples", "2", "--max-new-tokens", "3",
            "--precision", "fp32", "-q"]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tune-cli")


@pytest.fixture(scope="module")
def prepared(root: Path, tiny_model: Path) -> tuple[Result, Path]:
    """``tune prepare`` of 12 Alpaca records (4 countries x 3 phrasings), a quarter held out."""
    source = root / "capitals.jsonl"
    source.write_text("".join(
        json.dumps({"instruction": q.format(country), "output": f"{city} ."}) + "\n"
        for q in QUESTIONS for country, city in PAIRS))
    out = root / "prepared"
    result = invoke("tune", "prepare", source, "--out", out, "--base", tiny_model,
                    "--split", "0.25")
    return result, out


@pytest.fixture(scope="module")
def trained(prepared: tuple[Result, Path], root: Path, tiny_model: Path) -> tuple[Result, Path]:
    run = root / "run"
    return invoke(*lora_args(prepared[1], run, tiny_model)), run


def test_prepare_counts_tokens_with_the_base_model(prepared, tiny_model):
    result, out = prepared
    assert result.exit_code == 0, result.output
    assert "capitals.jsonl: alpaca, 12 records" in result.output
    assert "12 read: 12 valid, 0 invalid, 0 duplicates dropped" in result.output
    assert f"tokens with the {tiny_model} chat template:" in result.output
    info = json.loads((out / "data.json").read_text())
    assert info["base_model"] == str(tiny_model)
    assert info["counts"]["train"] + info["counts"]["eval"] == 12
    assert info["counts"]["eval"] >= 2  # enough for --eval-samples 2
    # word-level tokenizer: "paris ." is two tokens, plus the end-of-turn token
    assert info["tokens"]["train"]["answer_tokens"] == 3 * info["counts"]["train"]


def test_lora_prints_the_summary_and_writes_the_run(trained):
    result, run = trained
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out[0].startswith("trained 4 steps on cpu (fp32): ")
    assert "tokens/s" in out[0] and "peak memory" in out[0]
    assert out[1].startswith("best checkpoint: step ")
    assert "eval_loss" in out[1] and "rouge_l" in out[1] and "exact_match" in out[1]
    assert out[2] == f"adapter: {run / 'adapter'}"
    assert out[3] == f'use it:  ragtune generate "..." --adapter {run}'

    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["steps"] == 4
    assert info["precision"] == "fp32" and info["tokens_per_s"] > 0
    assert info["config"]["eval_every"] == 2 and info["config"]["max_new_tokens"] == 3
    assert info["best"]["step"] in (2, 4)
    metrics = lines(run / "metrics.jsonl")
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2, 3, 4]
    assert [m["step"] for m in metrics if m.get("kind") == "eval"] == [2, 4]
    for step in (2, 4):
        answers = lines(run / "eval" / f"step-{step}.jsonl")
        assert len(answers) == 2 and {"id", "answer", "reference"} <= set(answers[0])
    for folder in ("adapter", "last"):
        assert (run / folder / "adapter_config.json").exists()
        assert (run / folder / "adapter_model.safetensors").exists()
    # --save-every defaults to 50: the final step is always checkpointed
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-4"]


def test_lora_json_output_parses(prepared, root, tiny_model):
    result = invoke(*lora_args(prepared[1], root / "run-json", tiny_model), "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["status"] == "finished" and info["steps"] == 4
    assert info["config"]["out"] == str(root / "run-json")
    assert info == json.loads((root / "run-json" / "run.json").read_text())


def test_resume_of_a_finished_run_does_not_train_again(trained, tmp_path):
    run = shutil.copytree(trained[1], tmp_path / "run")
    before = (run / "metrics.jsonl").read_text()
    weights = (run / "adapter" / "adapter_model.safetensors").read_bytes()
    last = (run / "last" / "adapter_model.safetensors").read_bytes()
    info = json.loads((run / "run.json").read_text())

    result = invoke("tune", "lora", "--resume", run, "-q")
    assert result.exit_code == 0, result.output
    # it restores the step-4 checkpoint, finds no step left, and writes the run back as is
    assert (run / "metrics.jsonl").read_text() == before
    assert (run / "adapter" / "adapter_model.safetensors").read_bytes() == weights
    assert (run / "last" / "adapter_model.safetensors").read_bytes() == last
    again = json.loads((run / "run.json").read_text())
    assert again["status"] == "finished"
    for key in ("steps", "tokens", "train_seconds", "best"):
        assert again[key] == info[key]
    assert "had already finished its 4 steps: nothing to train" in result.stdout


def test_export_merged_is_a_plain_transformers_model(trained, tmp_path, tiny_model):
    from transformers import AutoModelForCausalLM

    result = invoke("tune", "export", trained[1], "--out", tmp_path / "merged", "--merge")
    assert result.exit_code == 0, result.output
    assert f"merged model written to {tmp_path / 'merged'}" in result.output
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    assert (tmp_path / "merged" / "tokenizer.json").exists()
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged"),
                                                 local_files_only=True)
    assert model.config.num_hidden_layers == 2
    assert not any("lora" in name for name, _ in model.named_parameters())
    export = json.loads((tmp_path / "merged" / "ragtune-export.json").read_text())
    assert export["merged"] is True and export["base"] == str(tiny_model)


def test_export_adapter_names_the_base_folder(trained, tmp_path, tiny_model):
    result = invoke("tune", "export", trained[1], "--out", tmp_path / "adapter")
    assert result.exit_code == 0, result.output
    served = f"--enable-lora --lora-modules run={(tmp_path / 'adapter').resolve()}"
    assert f"vllm serve {tiny_model} {served}" in result.output.replace("\n", " ")
    assert json.loads((tmp_path / "adapter" / "ragtune-export.json").read_text())["name"] == "run"
    named = invoke("tune", "export", trained[1], "--out", tmp_path / "b", "--name", "legal v2")
    assert named.exit_code == 1 and "adapter name 'legal v2'" in str(named.exception)
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model)
    # what vLLM's LoRA loader refuses: bias, DoRA, extra saved modules, rank over the limit
    assert config["bias"] == "none" and not config.get("use_dora")
    assert not config.get("modules_to_save") and config["r"] <= 16
    from ragtune.tune.export import vllm_command

    wide = vllm_command({"base_path": "B", "name": "n", "out": "o", "rank": 32})
    assert wide.endswith("--max-lora-rank 32")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()


def test_generate_with_the_adapter(trained, tiny_model):
    args = ["generate", "what is the capital of france ?", "--adapter", trained[1],
            "--model", tiny_model, "--max-tokens", "3"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["adapter"] == str(trained[1]) and 0 < out["completion_tokens"] <= 3


# --- errors: exit status 1 and a message that says what to do ------------------------------

def test_lora_needs_data_and_out(tmp_path):
    result = invoke("tune", "lora", "--out", tmp_path / "run")
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)
    assert "give --data DIR and --out RUN (or --resume RUN)" in str(result.exception)
    assert not (tmp_path / "run").exists()
    # the installed command prints it as one line, no traceback
    proc = subprocess.run([sys.executable, "-m", "ragtune", "tune", "lora", "--data",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr == "error: give --data DIR and --out RUN (or --resume RUN)\n"


def test_resume_of_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "notes.txt").write_text("not a run")
    result = invoke("tune", "lora", "--resume", tmp_path)
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)
    assert f"{tmp_path} is not a ragtune run folder (no run.json)" in str(result.exception)
    assert "ragtune tune lora --data DIR --out RUN" in str(result.exception)


def test_qlora_without_cuda_names_cuda(prepared, tmp_path, tiny_model):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --qlora is allowed")
    result = invoke(*lora_args(prepared[1], tmp_path / "run", tiny_model), "--qlora")
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)
    message = str(result.exception)
    assert "needs a CUDA GPU" in message and "drop --qlora" in message
    # nothing was written: the same --out can be used for a plain LoRA run
    assert not any((tmp_path / "run").iterdir())


def test_export_into_a_non_empty_folder(trained, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    result = invoke("tune", "export", trained[1], "--out", tmp_path / "taken", "--merge")
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)
    assert f"{tmp_path / 'taken'} is not empty: export into a new folder" \
        in str(result.exception)
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
