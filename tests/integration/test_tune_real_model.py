"""LoRA fine-tuning of the real bundled smollm2-135m-instruct on 24 short Q/A pairs: the
trainer, the generator loading the adapter and a merged export, in under a minute on a CPU.

The loss curve is compared with one recorded in tests/data/; after a change that moves it on
purpose, record it again (both CPU precisions, about three minutes on two cores):

    .venv/bin/python tests/integration/test_tune_real_model.py --record
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ragtune.models.registry import bundled_model, model_files

MODEL = "smollm2-135m-instruct"

pytestmark = pytest.mark.skipif(
    model_files(bundled_model(MODEL)) is None,
    reason=f"bundled model {MODEL} not installed ({bundled_model(MODEL).install_command})")

CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Spain", "Madrid"), ("Italy", "Rome"),
    ("Portugal", "Lisbon"), ("Austria", "Vienna"), ("Poland", "Warsaw"), ("Greece", "Athens"),
    ("Sweden", "Stockholm"), ("Norway", "Oslo"), ("Finland", "Helsinki"),
    ("Denmark", "Copenhagen"), ("Ireland", "Dublin"), ("Hungary", "Budapest"),
    ("Czechia", "Prague"), ("Belgium", "Brussels"), ("Japan", "Tokyo"), ("China", "Beijing"),
    ("India", "New Delhi"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Peru", "Lima"),
    ("Chile", "Santiago"), ("Canada", "Ottawa"),
]


REFERENCE = Path(__file__).parents[1] / "data" / "tune_real_model_losses.json"
# Per-step relative tolerance against the recorded curve. Same seed and data give the same
# batches and LoRA init, so only floating-point summation order can move the loss: fp32 on
# 1 and 2 threads gave identical losses here. A changed recipe moves it far more: twice the
# learning rate gave 0.140 and 0.060 at steps 2 and 3 against 0.205 and 0.102 (-32%, -42%),
# bf16 instead of fp32 +37% at step 2.
TOLERANCE = 0.02


def train_capitals(root: Path, precision: str = "auto") -> Path:
    """Prepare the 24 pairs and train 3 steps; returns the run folder."""
    from ragtune.tune import prepare
    from ragtune.tune.config import TrainConfig
    from ragtune.tune.train import train

    source = root / "capitals.jsonl"
    source.write_text("".join(
        json.dumps({"instruction": f"What is the capital of {country}?",
                    "output": f"The capital of {country} is {city}."}) + "\n"
        for country, city in CAPITALS))
    info = prepare([source], root / "prepared", base=MODEL, split=0.25)
    assert info["counts"]["read"] == 24 and info["counts"]["eval"] >= 2
    train(TrainConfig(data=str(root / "prepared"), out=str(root / f"run-{precision}"),
                      base=MODEL, max_steps=3, batch_size=4, eval_samples=2, max_new_tokens=8,
                      precision=precision), progress=False)
    return root / f"run-{precision}"


def losses_of(run: Path) -> list[float]:
    steps = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [s["loss"] for s in steps if "loss" in s]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_capitals(tmp_path_factory.mktemp("tune-real"))


def test_the_run_records_precision_and_speed(run):
    from ragtune.tune.train import resolve_precision

    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["steps"] == 3
    assert info["precision"] == resolve_precision("auto", info["device"])
    assert info["tokens_per_s"] > 0 and info["tokens"] > 0
    assert len((run / "eval" / "step-3.jsonl").read_text().splitlines()) == 2


def test_the_loss_curve_is_the_recorded_one(run):
    info = json.loads((run / "run.json").read_text())
    key = f"{info['device']}/{info['precision']}"
    recorded = json.loads(REFERENCE.read_text())["losses"]
    if key not in recorded:
        pytest.skip(f"no loss curve recorded for {key} (recorded: {', '.join(recorded)})")
    losses = losses_of(run)
    assert len(losses) == len(recorded[key]) == 3
    for step, (got, want) in enumerate(zip(losses, recorded[key], strict=True), 1):
        assert abs(got - want) <= TOLERANCE * want, (
            f"step {step}: loss {got:.4f}, recorded {want:.4f} ({key}, tolerance "
            f"{TOLERANCE:.0%}); if training changed on purpose, re-record (see the docstring)")


def test_the_generator_answers_with_the_adapter(run, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from ragtune.models.local_generator import LocalGenerator
    from ragtune.tune.export import export

    tuned = LocalGenerator(MODEL, adapter=run)
    assert tuned.adapter == run / "adapter"
    question = [{"role": "user", "content": "What is the capital of Spain?"}]
    out = tuned.generate(question, max_tokens=8)
    assert out.text.strip() and 0 < out.completion_tokens <= 8

    export(run, tmp_path / "merged", merge=True)
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged"),
                                                  local_files_only=True)
    ids = tuned.tokenizer.apply_chat_template(question, add_generation_prompt=True,
                                              return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():  # the export holds the same merged weights the generator uses
        greedy = merged.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8,
                                 do_sample=False)
    expected = tuned.tokenizer.decode(greedy[0, ids.shape[1]:], skip_special_tokens=True)
    assert out.text == expected.strip()


def record(root: Path) -> None:
    """Train at fp32 and bf16 on the CPU and write the reference file."""
    root.mkdir(parents=True, exist_ok=True)
    curves = {f"cpu/{p}": losses_of(train_capitals(root, p)) for p in ("fp32", "bf16")}
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(json.dumps({
        "about": "loss per step of tests/integration/test_tune_real_model.py, by "
                 "device/precision",
        "command": "python tests/integration/test_tune_real_model.py --record",
        "losses": curves}, indent=1) + "\n")
    print(json.dumps(curves))


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        record(Path(folder))
