"""Few-shot prompting: byte-exact prompts for every variant, noisy examples that are really
wrong, and the evaluation's results in fewshot.json beside an untouched eval.json."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import tiny_config

from arithlab import rundir
from arithlab.api import load_run
from arithlab.cli import main
from arithlab.data import ShotSet, example_text, shot_prefix, shot_sets
from arithlab.errors import ArithlabError
from arithlab.evaluator import prompt_text
from arithlab.formats import get_format
from arithlab.tasks import Problem

EXAMPLES = [Problem("+", 103, 896), Problem("+", 683, 857), Problem("+", 221, 732)]
QUERY = Problem("+", 1, 418)
TRAIN = [Problem("+", a, b) for a in range(0, 40, 3) for b in range(5, 60, 7)]


def test_plain_k_shot_prompt_is_the_examples_each_on_its_line_then_the_query():
    fmt = get_format("plain")
    prefix = shot_prefix(fmt, ShotSet(EXAMPLES), 3)
    assert prompt_text(fmt, QUERY, prefix=prefix) == "\n103+896=999\n683+857=1540\n221+732=953\n1+418="
    # The reference's prompts (no leading newline) give the study's example exactly.
    assert prompt_text(fmt, QUERY, True, prefix) == "103+896=999\n683+857=1540\n221+732=953\n1+418="
    assert prompt_text(fmt, QUERY, prefix=shot_prefix(fmt, ShotSet(EXAMPLES), 1)) == "\n103+896=999\n1+418="
    assert prompt_text(fmt, QUERY, prefix=shot_prefix(fmt, ShotSet(EXAMPLES), 0)) == "\n1+418="


def test_reverse_and_scratchpad_examples_are_samples_as_training_renders_them():
    rev = get_format("reverse")
    assert prompt_text(rev, QUERY, prefix=shot_prefix(rev, ShotSet(EXAMPLES), 2)) == (
        "\n$103+896=999$\n$683+857=0451$\n$1+418="
    )
    simple = get_format("simplified")
    assert prompt_text(simple, QUERY, prefix=shot_prefix(simple, ShotSet(EXAMPLES[:1]), 1)) == (
        "\nInput:\n103+896\nTarget:\nA->9 , C->0\nA->9 , C->0\nA->9 , C->0.\n999\nInput:\n1+418\nTarget:\n"
    )


def test_text_prefix_is_a_line_of_text_then_the_examples():
    fmt = get_format("plain")
    shot_set = ShotSet(EXAMPLES, text="Now is the winter of our discontent")
    assert prompt_text(fmt, QUERY, prefix=shot_prefix(fmt, shot_set, 1)) == (
        "\nNow is the winter of our discontent\n103+896=999\n1+418="
    )
    assert prompt_text(fmt, QUERY, prefix=shot_prefix(fmt, shot_set, 0)) == (
        "\nNow is the winter of our discontent\n1+418="
    )


def test_noisy_example_is_its_question_with_another_problems_answer():
    fmt = get_format("plain")
    assert example_text(fmt, EXAMPLES[0], wrong=EXAMPLES[1]) == "103+896=1540\n"
    assert example_text(get_format("reverse"), EXAMPLES[0], wrong=EXAMPLES[1]) == "$103+896=0451$\n"


@pytest.mark.parametrize("name", ["plain", "reverse", "simplified", "detailed"])
def test_noisy_examples_are_actually_wrong(name):
    fmt = get_format(name)
    for shot_set in shot_sets(TRAIN, 3, 10, fmt, "noisy", seed=4):
        for problem, wrong in zip(shot_set.examples, shot_set.wrong):
            text = example_text(fmt, problem, wrong)
            assert text.startswith(fmt.prompt(problem)) and text.endswith("\n")
            answer = text[len(fmt.prompt(problem)) :]
            assert fmt.parse(answer, problem) != fmt.target(problem)


def test_shot_sets_are_seeded_distinct_training_problems_shared_by_the_variants():
    fmt = get_format("plain")
    plain = shot_sets(TRAIN, 3, 5, fmt, "plain", seed=1)
    assert plain == shot_sets(TRAIN, 3, 5, fmt, "plain", seed=1)
    assert plain != shot_sets(TRAIN, 3, 5, fmt, "plain", seed=2)
    noisy = shot_sets(TRAIN, 3, 5, fmt, "noisy", seed=1)
    text = shot_sets(TRAIN, 3, 5, fmt, "text", heldout="\nFirst line\n\nSecond line\n", seed=1)
    assert [s.examples for s in plain] == [s.examples for s in noisy] == [s.examples for s in text]
    for shot_set in plain:
        assert len(set(shot_set.examples)) == 3 and set(shot_set.examples) <= set(TRAIN)
    assert {s.text for s in text} <= {"First line", "Second line"}
    with pytest.raises(ArithlabError, match="text-mixed"):
        shot_sets(TRAIN, 3, 5, fmt, "text", heldout=None)


STREAM_OVERRIDES = [
    "name=stream",
    "train.objective=stream",
    "model.block_size=64",
    "train.position_offset=0",
    "train.batch_size=32",
    "train.max_iters=40",
    "train.eval_interval=40",
    "train.threads=1",
    "data.n_train=500",
    "data.n_val=20",
    "data.n_test=60",
    "eval.shots=2",
    "eval.shot_sets=2",
    "eval.shot_n=30",
]


@pytest.fixture(scope="module")
def stream_run(tmp_path_factory):
    from arithlab.trainer import train

    return train(tiny_config(*STREAM_OVERRIDES), tmp_path_factory.mktemp("fewshot") / "run", progress=False)


def test_training_with_eval_shots_writes_fewshot_json(stream_run):
    result = rundir.read_json(stream_run / rundir.FEWSHOT)["plain"]
    assert (result["variant"], result["format"], result["sets"], result["n"]) == ("plain", "reverse", 2, 30)
    assert sorted(result["by_shots"]) == ["0", "1", "2"]
    for cell in result["by_shots"].values():
        assert len(cell["per_set"]) == 2
        assert cell["accuracy"] == pytest.approx(sum(cell["per_set"]) / 2)
        assert max(cell["per_set"]) <= cell["at_least_one"] <= 1
    examples = result["example_sets"][0]["examples"]
    query = rundir.read_splits(stream_run).test[0]
    assert result["by_shots"]["2"]["prompt"] == "\n" + examples[0] + examples[1] + f"${query.question}="


def test_zero_shot_accuracy_is_the_ordinary_evaluation(stream_run):
    run = load_run(stream_run, device="cpu")
    problems = rundir.read_splits(stream_run).test[:30]
    result = run.fewshot(problems, shots=1, shot_sets=3)
    assert result["by_shots"]["0"]["accuracy"] == run.evaluate(problems)[0]["accuracy"]
    assert result["by_shots"]["0"]["per_set"] == [result["by_shots"]["0"]["accuracy"]] * 3


def test_eval_shots_adds_each_variant_to_fewshot_json_and_leaves_eval_json(stream_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(stream_run, run_dir)
    before = (run_dir / rundir.EVAL).read_text()
    args = ["--shots", "1", "--shot-sets", "2", "--shot-n", "10", "--shot-variant", "noisy"]
    assert main(["eval", str(run_dir), *args]) == 0
    out = capsys.readouterr().out
    assert "1-shot: mean" in out and "at least one set right" in out
    results = json.loads((run_dir / rundir.FEWSHOT).read_text())
    assert set(results) == {"plain", "noisy"} and results["noisy"]["n"] == 10
    assert (run_dir / rundir.EVAL).read_text() == before


def test_prompts_longer_than_the_block_size_are_a_clear_error(stream_run, capsys):
    assert main(["eval", str(stream_run), "--shots", "6", "--shot-n", "5"]) == 2
    err = capsys.readouterr().err
    assert "block_size 64" in err and "fewer shots" in err and err.count("\n") == 1


def test_text_variant_needs_a_text_run(stream_run):
    with pytest.raises(ArithlabError, match="text-mixed"):
        load_run(stream_run, device="cpu").fewshot(shots=1, shot_variant="text", shot_n=5)


def test_a_few_shot_evaluation_that_cannot_fit_stops_the_run_before_training(tmp_path):
    from arithlab.trainer import train

    cfg = tiny_config(*STREAM_OVERRIDES, "eval.shots=8")
    with pytest.raises(ArithlabError, match="-shot prompts need .* block_size 64"):
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / rundir.WEIGHTS).exists()
