"""Fine-tuning data: formats, validation messages, split, token statistics, the folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ragtune.errors import ConfigError, DataError
from ragtune.tune.data import load_prepared, prepare, read_records
from ragtune.tune.split import split_examples
from ragtune.tune.tokens import token_stats


class WordTokenizer:
    """A chat template rendered as ``<role> content </s>`` and split on whitespace."""

    def apply_chat_template(self, conversation, *, tokenize=True, add_generation_prompt=False):
        text = "".join(f"<{m['role']}> {m['content']} </s> " for m in conversation)
        return (text + ("<assistant>" if add_generation_prompt else "")).split()


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n"
                            for r in records), encoding="utf-8")
    return path


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def qa(i: int, **extra) -> dict:
    return {"instruction": f"question {i}", "output": f"answer {i}", **extra}


def messages_of(examples):
    return [ex["messages"] for ex in examples]


# --- formats -------------------------------------------------------------------------------

def test_alpaca_input_system_and_history(tmp_path):
    path = write_json(tmp_path / "a.json", [
        {"instruction": "Translate", "input": "bonjour", "output": "hello", "system": "Be brief.",
         "history": [["hi", "hello there"]]},
        {"instruction": "Add 2 and 2", "input": "", "output": "4"},
    ])
    examples, report = read_records([path])
    assert messages_of(examples) == [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
         {"role": "assistant", "content": "hello there"},
         {"role": "user", "content": "Translate\n\nbonjour"},
         {"role": "assistant", "content": "hello"}],
        [{"role": "user", "content": "Add 2 and 2"}, {"role": "assistant", "content": "4"}],
    ]
    assert [i.format for i in report.inputs] == ["alpaca"]
    assert [ex["id"] for ex in examples] == ["a-0", "a-1"]


def test_each_file_gets_its_own_detected_format(tmp_path):
    chat = write_jsonl(tmp_path / "chat.jsonl", [{"id": "c1", "messages": [
        {"role": "system", "content": "S"}, {"role": "user", "content": "U"},
        {"role": "assistant", "content": "A"}]}])
    share = write_jsonl(tmp_path / "share.jsonl", [{"system": "S2", "conversations": [
        {"from": "human", "value": "U2"}, {"from": "gpt", "value": "A2"}]}])
    pc = write_jsonl(tmp_path / "pc.jsonl", [
        {"prompt": "U3", "completion": "A3"},
        {"prompt": [{"role": "user", "content": "U4"}],
         "completion": [{"role": "assistant", "content": "A4"}]}])
    examples, report = read_records([chat, share, pc])
    assert [i.format for i in report.inputs] == ["messages", "sharegpt", "prompt_completion"]
    assert [[m["content"] for m in ms] for ms in messages_of(examples)] == [
        ["S", "U", "A"], ["S2", "U2", "A2"], ["U3", "A3"], ["U4", "A4"]]
    assert examples[0]["id"] == "c1"
    assert examples[1]["messages"][0]["role"] == "system"


def test_template_over_an_object_of_records_keyed_by_id(tmp_path):
    path = write_json(tmp_path / "legal.json", {
        "k1": {"doc": "Terms", "original_text": "clause one", "reference_summary": "one"},
        "k2": {"doc": "Terms", "original_text": "clause two", "reference_summary": "two"},
    })
    examples, report = read_records([path], template="Summarise:\n{original_text}",
                                    target_field="reference_summary", group_by="doc")
    assert report.inputs[0].format == "template"
    assert [ex["id"] for ex in examples] == ["k1", "k2"]
    assert examples[1]["messages"] == [{"role": "user", "content": "Summarise:\nclause two"},
                                       {"role": "assistant", "content": "two"}]
    assert examples[0]["group"] == "Terms"
    # origin is FILE:LINE, the line where the record starts in the .json file
    assert examples[0]["origin"] == f"{path}:2" and examples[1]["origin"] == f"{path}:7"


def test_line_separators_inside_strings_do_not_split_records(tmp_path):
    path = tmp_path / "d.jsonl"
    record = {"instruction": "one\u2028two\x1cthree", "output": "a\u2029b"}
    path.write_text(json.dumps(record, ensure_ascii=False) + "\r\n", encoding="utf-8")
    examples, _ = read_records([path])
    assert examples[0]["messages"][0]["content"] == "one\u2028two\x1cthree"
    prepare([path], tmp_path / "out", tokenizer=WordTokenizer(), split=0)
    assert load_prepared(tmp_path / "out")[0][0]["messages"] == examples[0]["messages"]


def test_system_is_added_only_where_missing(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [qa(1), qa(2, system="Own.")])
    examples, _ = read_records([path], system="Default.")
    assert [ex["messages"][0]["content"] for ex in examples] == ["Default.", "Own."]


# --- validation ----------------------------------------------------------------------------

def test_invalid_records_name_file_line_and_field(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", [
        qa(1), qa(2), "{not json", qa(3), "", {"instruction": "q", "output": ""},
        {"instruction": "q", "output": 5}, ["a list"]])
    with pytest.raises(DataError) as err:
        read_records([path])
    message = str(err.value)
    assert f"{path} line 3: invalid JSON" in message
    assert f"{path} line 6: field 'output' must be a non-empty string, got an empty string" \
        in message
    assert f"{path} line 7: field 'output' must be a non-empty string, got a number" in message
    assert f"{path} line 8: a record must be a JSON object, got list" in message
    assert "4 of 7 records are invalid" in message and "--skip-invalid" in message
    assert len(err.value.problems) == 4


@pytest.mark.parametrize("record, expected", [
    ({"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "x"}]},
     "field 'messages[1].role' must be one of system, user, assistant; got 'tool'"),
    ({"messages": [{"role": "user", "content": "q"}]},
     "field 'messages' has no assistant turn"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                   {"role": "user", "content": "q2"}]},
     "field 'messages' ends with a user turn; it must end with an assistant turn"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "user", "content": "q2"},
                   {"role": "assistant", "content": "a"}]},
     "field 'messages[1]' is a user turn after a user turn"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " "}]},
     "field 'messages[1].content' must be a non-empty string"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "bot", "value": "a"}]},
     "field 'conversations[1].from' must be one of system, human, user, gpt, assistant"),
    ({"instruction": "q", "output": "a", "history": [["only one"]]},
     "field 'history[0]' must be a [user, assistant] pair of non-empty strings"),
    ({"instruction": "q"}, "field 'output' is missing; it must be a non-empty string"),
    ({"messages": [{"role": ["user"], "content": "q"}, {"role": "assistant", "content": "a"}]},
     "field 'messages[0].role' must be one of system, user, assistant; got ['user']"),
])
def test_format_checks(tmp_path, record, expected):
    path = write_jsonl(tmp_path / "d.jsonl", [record])
    with pytest.raises(DataError, match="line 1: " + expected.replace("[", r"\[")
                       .replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        read_records([path])


def test_template_and_group_fields_must_exist(tmp_path):
    path = write_json(tmp_path / "d.json", [
        {"text": "t", "summary": "s", "doc": "a"}, {"summary": "s", "doc": "b"},
        {"text": "t2", "summary": "s2"}])
    with pytest.raises(DataError) as err:
        read_records([path], template="{text}", target_field="summary", group_by="doc")
    assert f"{path} record 1 (line 7): field 'text' (used by the template) is missing" \
        in str(err.value)
    assert f"{path} record 2 (line 11): field 'doc' (used by --group-by) is missing" \
        in str(err.value)


def test_template_settings_are_checked(tmp_path):
    path = write_json(tmp_path / "d.json", [{"text": "t", "summary": "s"}])
    with pytest.raises(ConfigError, match="needs a target field"):
        read_records([path], template="{text}")
    with pytest.raises(ConfigError, match="plain field name"):
        read_records([path], template="{0}", target_field="summary")
    with pytest.raises(ConfigError, match="valid choices: auto, alpaca, messages"):
        read_records([path], fmt="csv")
    with pytest.raises(ConfigError, match="unknown conversion"):
        read_records([path], template="{text!z}", target_field="summary")


def test_a_format_spec_that_does_not_fit_a_record_names_it(tmp_path):
    path = write_json(tmp_path / "d.json", [{"text": "t", "summary": "s"}])
    with pytest.raises(DataError, match=r"record 0 .*cannot format fields text.*\{count:d\}"):
        read_records([path], template="{text:d}", target_field="summary")


def test_at_most_twenty_problems_are_quoted(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [qa(0)] + [{"instruction": "q"}] * 25)
    with pytest.raises(DataError) as err:
        read_records([path])
    assert "25 of 26 records are invalid" in str(err.value)
    assert "line 21:" in str(err.value) and "line 22:" not in str(err.value)
    assert "... and 5 more" in str(err.value)
    assert len(err.value.problems) == 25


def test_skip_invalid_counts_and_lists_them(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [qa(1), {"instruction": "q"}, qa(2), qa(1)])
    info = prepare([path], tmp_path / "out", tokenizer=WordTokenizer(), split=0,
                   skip_invalid=True)
    assert info["counts"] == {"read": 4, "valid": 3, "invalid": 1, "duplicates": 1,
                              "train": 2, "eval": 0}
    assert info["invalid"] == [f"{path} line 2: field 'output' is missing; it must be a "
                               "non-empty string"]


def test_unreadable_inputs_are_refused_clearly(tmp_path):
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(json.dumps(qa(1)).encode() + b"\n" + '{"instruction": "café"}'
                      .encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.jsonl: not UTF-8 text \(byte 0xe9 on line 2\)"):
        read_records([latin])
    broken = tmp_path / "broken.json"
    broken.write_text('[\n  {"instruction": "q", "output": "a"},\n  {"instruction": }\n]')
    with pytest.raises(DataError, match=r"broken\.json: invalid JSON at line 3 column 19"):
        read_records([broken])
    with pytest.raises(DataError, match=r"unsupported file type '\.csv'.*\.jsonl"):
        read_records([write_jsonl(tmp_path / "d.csv", [qa(1)])])
    with pytest.raises(DataError, match="nope.jsonl: no such file"):
        read_records([tmp_path / "nope.jsonl"])
    with pytest.raises(DataError, match="cannot tell the format; line 1 has fields a, b"):
        read_records([write_jsonl(tmp_path / "other.jsonl", [{"a": 1, "b": 2}])])


def test_empty_input_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no valid examples in .*: they hold no records"):
        read_records([write_json(tmp_path / "e.json", [])])
    with pytest.raises(DataError, match="no data files"):
        read_records([])


def test_exact_duplicates_are_dropped(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [qa(1), qa(2), qa(1)])
    b = write_json(tmp_path / "b.json", [qa(2)])
    examples, report = read_records([a, b])
    assert [ex["id"] for ex in examples] == ["a-0", "a-1"]
    assert report.duplicates == 2 and report.read == 4


# --- split ---------------------------------------------------------------------------------

def examples_with(n: int, groups: int | None = None) -> list[dict]:
    return [{"id": str(i), "messages": [{"role": "user", "content": f"q{i}"},
                                        {"role": "assistant", "content": f"a{i}"}],
             "group": None if groups is None else f"g{i % groups}", "origin": f"x:{i}"}
            for i in range(n)]


def test_split_is_deterministic_and_near_the_fraction():
    examples = examples_with(200)
    train, held = split_examples(examples, 0.1, seed=0)
    assert len(held) == 20 and len(train) == 180
    assert split_examples(examples, 0.1, seed=0) == (train, held)
    assert split_examples(examples, 0.1, seed=1)[1] != held
    # the input order does not change which examples are held out
    assert sorted(ex["id"] for ex in split_examples(examples[::-1], 0.1, seed=0)[1]) == \
        sorted(ex["id"] for ex in held)
    assert split_examples(examples, 0, seed=0) == (examples, [])


def test_groups_stay_on_one_side():
    examples = examples_with(100, groups=10)
    train, held = split_examples(examples, 0.2, seed=3)
    train_groups = {ex["group"] for ex in train}
    held_groups = {ex["group"] for ex in held}
    assert not train_groups & held_groups
    assert len(held) == 20 and len(held_groups) == 2


def test_small_data_still_gets_both_sides():
    train, held = split_examples(examples_with(3), 0.05, seed=0)
    assert len(train) == 2 and len(held) == 1
    train, held = split_examples(examples_with(2, groups=2), 0.95, seed=0)
    assert len(train) == 1 and len(held) == 1


def test_one_group_cannot_be_split():
    with pytest.raises(DataError, match="needs at least 2 groups, but all 4 examples are in "
                                        "one group .*--split 0"):
        split_examples(examples_with(4, groups=1), 0.1)
    with pytest.raises(ConfigError, match=r"fraction in \[0, 1\)"):
        split_examples(examples_with(4), 1.0)


# --- tokens --------------------------------------------------------------------------------

def test_token_stats_count_answers_with_their_end_of_turn():
    examples = examples_with(2)
    examples[1]["messages"] = [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "q one"},
        {"role": "assistant", "content": "a b c"}, {"role": "user", "content": "q"},
        {"role": "assistant", "content": "d"}]
    stats = token_stats(examples, WordTokenizer())
    # "<user> q0 </s> <assistant> a0 </s>": 6 tokens, 2 of them the answer ("a0 </s>")
    # second: 4 + 4 + 5 + 3 + 3 = 19 tokens; answers "a b c </s>" and "d </s>": 6
    assert stats["tokens"] == 25 and stats["answer_tokens"] == 8
    assert stats["tokens_per_example"] == {"min": 6, "mean": 12.5, "p50": 6, "p95": 19,
                                           "max": 19}
    assert stats["answer_tokens_per_example"]["max"] == 6

    def counter(messages, add_generation_prompt):
        return WordTokenizer().apply_chat_template(
            messages, add_generation_prompt=add_generation_prompt)

    assert token_stats(examples, counter) == stats
    assert token_stats([], counter)["tokens_per_example"] is None


# --- the prepared folder -------------------------------------------------------------------

def test_prepare_writes_a_folder_that_load_prepared_reads(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [qa(i, doc=f"d{i % 5}") for i in range(50)])
    out = tmp_path / "prepared"
    info = prepare([path], out, tokenizer=WordTokenizer(), base="tiny", split=0.2,
                   group_by="doc", seed=0)
    assert sorted(p.name for p in out.iterdir()) == ["data.json", "eval.jsonl", "train.jsonl"]
    assert json.loads((out / "data.json").read_text()) == info
    assert info["inputs"][0]["format"] == "alpaca" and info["inputs"][0]["records"] == 50
    assert info["split"]["group_by"] == "doc" and info["split"]["unit"] == "group (field 'doc')"
    assert info["split"]["groups"] == {"train": 4, "eval": 1}
    assert info["base_model"] == "tiny"
    assert info["tokens"]["train"]["examples"] == info["counts"]["train"] == 40
    train, held, loaded = load_prepared(out)
    assert loaded == info and len(train) == 40 and len(held) == 10
    assert set(train[0]) == {"id", "messages", "group", "origin"}
    assert train[0]["origin"] == f"{path}:1"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_failed_prepare_leaves_the_old_folder_alone(tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", [qa(i) for i in range(10)])
    out = tmp_path / "prepared"
    prepare([good], out, tokenizer=WordTokenizer())
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = write_jsonl(tmp_path / "bad.jsonl", [qa(1), {"instruction": "q"}])
    with pytest.raises(DataError):
        prepare([bad], out, tokenizer=WordTokenizer())

    def broken(messages, add_generation_prompt):
        raise ValueError("roles must alternate")

    with pytest.raises(DataError, match=r"good\.jsonl:\d+: the chat template could not render"):
        prepare([good], out, tokenizer=broken)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    with pytest.raises(DataError):
        prepare([bad], tmp_path / "new", tokenizer=WordTokenizer())
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "good.jsonl", "prepared"]
    prepare([good], out, tokenizer=WordTokenizer(), seed=5)  # a prepared folder is replaced
    assert json.loads((out / "data.json").read_text())["split"]["seed"] == 5


def test_out_must_be_new_empty_or_prepared(tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", [qa(i) for i in range(10)])
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a prepared-data folder .*notes.txt"):
        prepare([good], other, tokenizer=WordTokenizer())
    (tmp_path / "empty").mkdir()
    prepare([good], tmp_path / "empty", tokenizer=WordTokenizer())
    assert (tmp_path / "empty" / "data.json").exists()


def test_load_prepared_refuses_other_folders(tmp_path):
    with pytest.raises(DataError, match="not a prepared-data folder .*no data.json.*"
                                        "`ragtune tune prepare DATA... --out"):
        load_prepared(tmp_path)
    with pytest.raises(DataError, match="no such folder"):
        load_prepared(tmp_path / "missing")
    good = write_jsonl(tmp_path / "good.jsonl", [qa(i) for i in range(10)])
    prepare([good], tmp_path / "p", tokenizer=WordTokenizer())
    with open(tmp_path / "p" / "train.jsonl", "a") as f:
        f.write(json.dumps({"id": "x"}) + "\n")
    with pytest.raises(DataError, match="train.jsonl changed after `ragtune tune prepare`"):
        load_prepared(tmp_path / "p")


def test_importing_tune_stays_light():
    code = ("import sys, ragtune.tune, ragtune.cli.tune; "
            "print([m for m in ('torch', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
