"""LoRA fine-tuning of the real bundled smollm2-135m-instruct on 24 short Q/A pairs: the
trainer, the generator loading the adapter and a merged export, in under a minute on a CPU."""

from __future__ import annotations

import json
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


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ragtune.tune import prepare
    from ragtune.tune.config import TrainConfig
    from ragtune.tune.train import train

    root = tmp_path_factory.mktemp("tune-real")
    source = root / "capitals.jsonl"
    source.write_text("".join(
        json.dumps({"instruction": f"What is the capital of {country}?",
                    "output": f"The capital of {country} is {city}."}) + "\n"
        for country, city in CAPITALS))
    info = prepare([source], root / "prepared", base=MODEL, split=0.25)
    assert info["counts"]["read"] == 24 and info["counts"]["eval"] >= 2
    train(TrainConfig(data=str(root / "prepared"), out=str(root / "run"), base=MODEL,
                      max_steps=3, batch_size=4, eval_samples=2, max_new_tokens=8),
          progress=False)
    return root / "run"


def test_the_run_records_precision_and_speed(run):
    from ragtune.tune.train import resolve_precision

    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["steps"] == 3
    assert info["precision"] == resolve_precision("auto", info["device"])
    assert info["tokens_per_s"] > 0 and info["tokens"] > 0
    steps = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [s["loss"] for s in steps if "loss" in s]
    assert len(losses) == 3 and all(0 < loss < 20 for loss in losses)
    assert len((run / "eval" / "step-3.jsonl").read_text().splitlines()) == 2


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
