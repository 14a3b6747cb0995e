"""envs/math/sources.py: splitting problems into train and val, procedural and from files."""

import json
import logging

import pytest

from envs.math import TaskConfig
from envs.math.sources import allocate, dataset_splits, derive_seed, procedural_splits

# chain_sum with two one-digit terms has exactly 10 * 10 * 2 = 200 distinct questions.
TINY_SPACE = TaskConfig(name="chain_sum", config={"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1})


def test_allocate_is_proportional_and_exact():
    assert allocate(10, [1, 1]) == [5, 5]
    assert allocate(10, [3, 1]) == [8, 2]  # 7.5, 2.5: the tie goes to the first
    assert allocate(7, [1, 1, 1]) == [3, 2, 2]
    assert allocate(100, [0.2, 0.3, 0.5]) == [20, 30, 50]
    assert sum(allocate(9999, [0.1, 2.7, 3.3])) == 9999


def test_derive_seed_is_stable():
    assert derive_seed(0, "chain_sum", "train", 0) == derive_seed(0, "chain_sum", "train", 0)
    assert derive_seed(0, "chain_sum", "train", 0) != derive_seed(0, "chain_sum", "val", 0)
    assert 0 <= derive_seed(-5, "x") < 2**31


def test_small_task_space_shortens_the_epoch(caplog):
    with caplog.at_level(logging.WARNING):
        train, val = procedural_splits([TINY_SPACE], train_size=1000, val_size=50, seed=0)
    assert len(val) == 50 and len(train) == 150  # all 200 questions, none in both
    assert "only 150 distinct training questions" in caplog.text
    assert not {p.question for p in train} & {p.question for p in val}


def test_small_task_space_cannot_fill_val():
    with pytest.raises(ValueError, match="only 200 distinct questions for its 300 validation problems"):
        procedural_splits([TINY_SPACE], train_size=10, val_size=300, seed=0)


def test_small_task_space_leaves_no_training_set():
    with pytest.raises(ValueError, match="no training problems left"):
        procedural_splits([TINY_SPACE], train_size=10, val_size=200, seed=0)


def test_family_with_no_share_is_an_error():
    tasks = [TaskConfig(name="chain_sum", weight=1000), TaskConfig(name="gcd", weight=1)]
    with pytest.raises(ValueError, match="task 'gcd' gets 0 of train_size=100"):
        procedural_splits(tasks, train_size=100, val_size=4, seed=0)


def test_same_family_twice_gets_distinct_labels():
    tasks = [
        TaskConfig(name="chain_sum", config={"max_terms": 2}),
        TaskConfig(name="chain_sum", config={"min_terms": 5}),
    ]
    train, val = procedural_splits(tasks, train_size=20, val_size=4, seed=0)
    assert {p.id.split("/")[0] for p in train} == {"chain_sum.0", "chain_sum.1"}
    assert len({p.question for p in train + val}) == 24


def test_meta_regenerates_the_problem():
    import reasoning_gym

    train, _ = procedural_splits([TaskConfig(name="gcd")], train_size=5, val_size=2, seed=1)
    meta = train[3].meta
    dataset = reasoning_gym.create_dataset("gcd", seed=meta["source_seed"], size=meta["source_index"] + 1)
    item = dataset[meta["source_index"]]
    assert item["question"] == train[3].question and item["answer"] == train[3].answer
    assert json.loads(json.dumps(meta)) == meta


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_dataset_holds_out_val_size_lines(tmp_path):
    rows = [{"question": f"q{i}", "answer": i} for i in range(20)] + [{"question": "q3", "answer": 3}]  # a repeat
    train, val = dataset_splits(write_jsonl(tmp_path / "toy.jsonl", rows), None, val_size=5, seed=0)
    assert len(val) == 5 and len(train) == 15
    assert not {p.question for p in train} & {p.question for p in val}
    assert {p.question for p in train + val} == {f"q{i}" for i in range(20)}
    assert train[0].id == "toy/train/" + str(train[0].meta["line"]) and val[0].id.startswith("toy/val/")
    # Another seed holds out other lines.
    _, val_other = dataset_splits(str(tmp_path / "toy.jsonl"), None, val_size=5, seed=1)
    assert {p.question for p in val} != {p.question for p in val_other}


def test_dataset_with_val_file_drops_contaminated_lines(tmp_path, caplog):
    rows = [{"question": f"q{i}", "answer": str(i), "level": i % 3} for i in range(10)]
    train_path = write_jsonl(tmp_path / "train.jsonl", rows)
    val_path = write_jsonl(tmp_path / "val.jsonl", [{"question": q, "answer": "0"} for q in ("v1", "v2", "q4")])
    with caplog.at_level(logging.WARNING):
        train, val = dataset_splits(train_path, val_path, val_size=128, seed=0)
    assert sorted(p.question for p in val) == ["q4", "v1", "v2"]  # the whole file; val_size does not apply
    assert len(train) == 9 and "q4" not in {p.question for p in train}
    assert "dropped 1 training lines" in caplog.text
    assert train[0].meta["fields"] == {"level": 0}


def test_dataset_too_small_for_val(tmp_path):
    path = write_jsonl(tmp_path / "toy.jsonl", [{"question": f"q{i}", "answer": i} for i in range(5)])
    with pytest.raises(ValueError, match="5 distinct questions cannot give 5 validation problems"):
        dataset_splits(path, None, val_size=5, seed=0)


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "toy.jsonl:2: not valid JSON"),
        ('{"question": "q"}', "toy.jsonl:2: 'answer' must be"),
        ('{"question": "", "answer": 1}', "toy.jsonl:2: 'question' must be a non-empty string"),
        ('{"question": "q", "answer": true}', "toy.jsonl:2: 'answer' must be"),
        ("[1, 2]", "toy.jsonl:2: expected an object"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "toy.jsonl"
    path.write_text('{"question": "ok", "answer": 1}\n' + line + "\n")
    with pytest.raises(ValueError, match=message):
        dataset_splits(str(path), None, val_size=1, seed=0)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl: JSONL file not found"):
        dataset_splits(str(tmp_path / "nope.jsonl"), None, val_size=1, seed=0)
