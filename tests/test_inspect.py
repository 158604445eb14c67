"""arithlab inspect and Run.inspect: token probabilities and attention of one problem, on
the session's tiny trained run."""

import json
import shutil

import pytest
from conftest import tiny_config
from matplotlib.image import imread

import arithlab
from arithlab.cli import main
from arithlab.errors import ArithlabError
from arithlab.trainer import train

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _inspect(capsys, *args):
    code = main(["inspect", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _problems(folder):
    return json.loads((folder / "inspect.json").read_text())["problems"]


def test_inspect_writes_attention_that_is_causal_and_sums_to_one(capsys, trained_run, tmp_path):
    code, out, err = _inspect(capsys, trained_run, "12+34", "--out", tmp_path / "i")
    assert code == 0, err
    (problem,) = _problems(tmp_path / "i")
    n = len(problem["tokens"])
    layers = problem["attention"]
    assert len(layers) == 2 and all(len(head) == n and len(head[0]) == n for heads in layers for head in heads)
    for heads in layers:
        for head in heads:
            for query, row in enumerate(head):
                assert sum(row) == pytest.approx(1.0, abs=1e-5)
                assert all(weight == 0.0 for weight in row[query + 1 :])  # no key after the query
    assert "12+34: output" in out and "runner-up" in out


def test_inspect_decodes_exactly_the_models_own_answer_with_its_probabilities(trained_run):
    run = arithlab.load_run(trained_run)
    for question in ("12+34", "99+1", "5+7", "50+49", "3+96", "77+88"):
        inspection = run.inspect(question)
        assert inspection.output == run.ask(question).output
        assert "".join(step.token for step in inspection.steps) == inspection.output
        assert "".join(inspection.tokens[: inspection.prompt_length]) == "\n$" + question + "="  # reverse format
        for step in inspection.steps:
            assert 0 < step.probability <= 1 and 0 <= step.runner_up_probability <= step.probability
            assert step.runner_up != step.token


def test_inspect_writes_a_png_figure_into_the_run_by_default(capsys, trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    code, out, err = _inspect(capsys, run, "12+34")
    assert code == 0, err
    folder = run / "inspect" / "12+34"
    figure = folder / "inspect.png"
    assert figure.read_bytes().startswith(PNG_SIGNATURE)
    assert imread(figure).ndim == 3  # decodes as an image
    assert f"written to {folder}" in out
    assert _inspect(capsys, run, "12+34")[0] == 0  # again: its own files replaced


def test_compare_draws_both_problems_in_one_figure(capsys, trained_run, tmp_path):
    assert _inspect(capsys, trained_run, "12+34", "--out", tmp_path / "one")[0] == 0
    code, _, err = _inspect(capsys, trained_run, "12+34", "--compare", "12+3", "--out", tmp_path / "two")
    assert code == 0, err
    assert [p["question"] for p in _problems(tmp_path / "two")] == ["12+34", "12+3"]
    assert sorted(path.name for path in (tmp_path / "two").iterdir()) == [".arithlab", "inspect.json", "inspect.png"]
    single, both = imread(tmp_path / "one" / "inspect.png"), imread(tmp_path / "two" / "inspect.png")
    assert both.shape[1] > 1.6 * single.shape[1]  # side by side


@pytest.mark.parametrize(
    "problem, needle",
    [
        ("12*+3", "12*+3"),
        ("12*3", "trained on +"),
        ("123456789012345678901234567890+1", "longer than the model"),
        ("sin(0.5)", "sin(0.5)"),
    ],
)
def test_a_bad_problem_or_one_of_another_operation_is_a_one_line_error(capsys, trained_run, tmp_path, problem, needle):
    code, out, err = _inspect(capsys, trained_run, problem, "--out", tmp_path / "i")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "i").exists()


def test_inspect_never_writes_into_a_folder_it_did_not_make(capsys, trained_run, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    code, _, err = _inspect(capsys, trained_run, "12+34", "--out", tmp_path / "mine")
    assert code == 2 and "not made by arithlab" in err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    with pytest.raises(ArithlabError, match="another kind"):
        run = arithlab.load_run(trained_run)
        run.save_inspection([run.inspect("12+34")], trained_run)


def test_inspect_reads_digit_places_as_attention_biases(tmp_path):
    # Coupled places with local attention: the places reach the model as biases, not embeddings.
    cfg = tiny_config(
        "data.format=reverse_all",
        "model.positions=coupled",
        "model.place_table=local",
        "train.max_iters=20",
        "train.eval_interval=20",
        "data.n_val=20",
        "data.n_test=20",
    )
    run = arithlab.load_run(train(cfg, tmp_path / "coupled", progress=False))
    inspection = run.inspect("45+67")
    assert inspection.output == run.ask("45+67").output
    folder = run.save_inspection([inspection])
    assert (folder / "inspect.png").read_bytes().startswith(PNG_SIGNATURE)
