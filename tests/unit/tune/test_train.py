"""The LoRA trainer on a tiny random Llama: labels, packing, the loop, resume, export."""

from __future__ import annotations

import json

import pytest
import torch

from ragtune.errors import ConfigError, RagtuneError
from ragtune.tune.config import TrainConfig
from ragtune.tune.encode import IGNORE, encode_record, pack, row_tensors
from ragtune.tune.export import export
from ragtune.tune.train import Trainer, answer_loss, resume, train
from tests.conftest import qa_records, write_prepared


@pytest.fixture
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model))


def test_labels_cover_each_answer_and_its_end_of_turn(tokenizer):
    messages = [{"role": "user", "content": "what is the capital of france ?"},
                {"role": "assistant", "content": "paris ."},
                {"role": "user", "content": "and germany ?"},
                {"role": "assistant", "content": "berlin ."}]
    enc = encode_record(tokenizer, messages, 256)
    answers = [tokenizer.decode([t]) for t, lab in zip(enc.input_ids, enc.labels, strict=True)
               if lab != IGNORE]
    assert answers == ["paris", ".", "<|im_end|>", "berlin", ".", "<|im_end|>"]
    assert enc.answer_tokens == 6
    assert len(encode_record(tokenizer, messages, 10).input_ids) == 10


def test_packed_rows_give_the_loss_of_separate_records(tiny_model, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model), attn_implementation="sdpa")
    records = [encode_record(tokenizer, r["messages"], 256) for r in qa_records(5)]
    rows = pack(records, 64)
    assert sorted(i for row in rows for i in row) == list(range(5))
    assert all(sum(len(records[i].input_ids) for i in row) <= 64 for row in rows)
    assert any(len(row) > 1 for row in rows)
    with torch.no_grad():
        packed = sum(float(answer_loss(model, row_tensors(records, row))) for row in rows)
        alone = sum(float(answer_loss(model, row_tensors(records, [i]))) for i in range(5))
    assert packed == pytest.approx(alone, rel=1e-4)  # no attention across records


def config(tiny_model, data, out, **kw):
    values = dict(data=str(data), out=str(out), base=str(tiny_model), rank=4, alpha=8,
                  dropout=0.0, learning_rate=3e-2, batch_size=4, max_steps=12, eval_every=6,
                  eval_samples=4, max_new_tokens=4, save_every=4, precision="fp32",
                  warmup_ratio=0.1)
    values.update(kw)
    return TrainConfig(**values)


def test_a_run_learns_and_records_everything(tiny_model, tmp_path):
    data = write_prepared(tmp_path / "data", qa_records(16), qa_records(4, offset=1))
    info = train(config(tiny_model, data, tmp_path / "run"), progress=False)
    run = tmp_path / "run"
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [x for x in lines if "loss" in x]
    evals = [x for x in lines if x.get("kind") == "eval"]
    assert [x["step"] for x in steps] == list(range(1, 13))
    assert steps[-1]["loss"] < steps[0]["loss"] * 0.5
    assert [x["step"] for x in evals] == [6, 12]
    assert {"eval_loss", "rouge_l", "exact_match"} <= set(evals[-1])
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"]
    assert info["status"] == "finished" and info["tokens_per_s"] > 0
    saved = json.loads((run / "run.json").read_text())
    assert saved["config"]["seed"] == 0 and "torch" in saved["versions"]
    assert saved["best"]["step"] in (6, 12)
    assert (run / "adapter" / "adapter_model.safetensors").exists()
    assert (run / "eval" / "step-12.jsonl").exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-12", "step-8"]

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    PeftModel.from_pretrained(base, str(run / "adapter"))  # PEFT's own layout

    with pytest.raises(RagtuneError, match="--resume"):
        train(config(tiny_model, data, run), progress=False)


def test_resume_after_a_kill_ends_where_an_unbroken_run_ends(tiny_model, tmp_path):
    data = write_prepared(tmp_path / "data", qa_records(16), qa_records(2, offset=1))
    train(config(tiny_model, data, tmp_path / "whole", dropout=0.1), progress=False)

    class Killed(Trainer):
        def step_records(self, step):
            if step == 9:
                raise KeyboardInterrupt
            return super().step_records(step)

    with pytest.raises(KeyboardInterrupt):
        Killed(config(tiny_model, data, tmp_path / "broken", dropout=0.1),
               progress=False).run()
    resume(tmp_path / "broken", progress=False)
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "whole" / "last" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "broken" / "last" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    steps = [json.loads(x)["step"] for x in
             (tmp_path / "broken" / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(x)]
    assert steps == list(range(1, 13))  # nothing counted twice


def test_merged_export_matches_the_adapter(tiny_model, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    data = write_prepared(tmp_path / "data", qa_records(8), [])
    train(config(tiny_model, data, tmp_path / "run", max_steps=4, eval_every=0),
          progress=False)
    export(tmp_path / "run", tmp_path / "merged", merge=True)
    export(tmp_path / "run", tmp_path / "plain")
    assert (tmp_path / "plain" / "adapter_config.json").exists()
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    ids = torch.tensor([[1, 5, 6, 7, 8]])
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged"))
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model)),
                                     str(tmp_path / "run" / "adapter"))
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, peft(ids).logits, atol=1e-4,
                                   rtol=1e-4)
    with pytest.raises(ConfigError, match="not empty"):
        export(tmp_path / "run", tmp_path / "merged")


def test_generator_loads_the_adapter(tiny_model, tmp_path):
    from ragtune.models.local_generator import LocalGenerator

    data = write_prepared(tmp_path / "data", qa_records(16), [])
    train(config(tiny_model, data, tmp_path / "run", learning_rate=2e-2, max_steps=30,
                 eval_every=0), progress=False)
    plain = LocalGenerator(str(tiny_model))
    tuned = LocalGenerator(str(tiny_model), adapter=tmp_path / "run")
    q = [{"role": "user", "content": "what is the capital of spain ?"}]
    assert tuned.adapter is not None and plain.adapter is None
    assert "madrid" in tuned.generate(q, max_tokens=4).text
    assert "madrid" not in plain.generate(q, max_tokens=4).text


def test_bad_settings_and_folders_are_clear(tiny_model, tmp_path):
    with pytest.raises(ConfigError, match="best_metric"):
        TrainConfig(best_metric="bleu").validate()
    with pytest.raises(ConfigError, match="CUDA"):
        data = write_prepared(tmp_path / "data", qa_records(4), [])
        train(config(tiny_model, data, tmp_path / "run", qlora=True, device="cpu"),
              progress=False)
    with pytest.raises(ConfigError, match="run.json"):
        resume(tmp_path / "nothing-here", progress=False)
