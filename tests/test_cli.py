"""The command line and the Python API, end to end on the session's tiny trained run."""

import json
import shutil

import pytest

import arithlab
from arithlab.cli import main


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_data_show_prints_exactly_the_training_sample(capsys):
    code, out, err = run_cli(capsys, "data", "show", "--format", "simplified", "128+367")
    assert code == 0 and err == ""
    assert out == "Input:\n128+367\nTarget:\nA->5 , C->1\nA->9 , C->0\nA->4 , C->0.\n495\n"


def test_data_make_writes_disjoint_problem_files(capsys, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  n_train: 300\n  n_val: 50\n  n_test: 200\n")
    code, out, _ = run_cli(capsys, "data", "make", config, "--out", tmp_path / "d")
    assert code == 0, out
    train = (tmp_path / "d" / "train.txt").read_text().splitlines()
    test = (tmp_path / "d" / "test.txt").read_text().splitlines()
    assert len(train) == 300 and len(test) == 200 and not set(train) & set(test)
    assert json.loads((tmp_path / "d" / "data.json").read_text())["overlap"]["train_test"] == 0


def test_data_lengths_writes_every_length_pair_of_a_sweep_and_never_overwrites(capsys, tmp_path):
    sweep = tmp_path / "s.yaml"
    settings = "{data.digits: 2, data.n_val: 10, data.n_test: 20}"
    sweep.write_text(f"name: s\nset: {settings}\naxes:\n  data.n_train: [200, 400]\n  data.seed: [0, 1]\n")
    out = tmp_path / "lengths.txt"
    code, printed, _ = run_cli(capsys, "data", "lengths", sweep, "--per-cell", 7, "--out", out)
    assert code == 0 and printed.startswith(f"wrote 21 problems to {out}: 1x2 7, 2x1 7, 2x2 7")
    written = out.read_text()
    code, _, err = run_cli(capsys, "data", "lengths", sweep, "--out", out)
    assert code != 0 and "already exists" in err and out.read_text() == written


def test_data_lengths_takes_a_config_of_only_a_base_as_a_config(capsys, tmp_path):
    (tmp_path / "base.yaml").write_text("data: {digits: 2, n_train: 200, n_val: 10, n_test: 20}\n")
    (tmp_path / "c.yaml").write_text("name: c\nbase: base.yaml\n")  # a config, not a one-point sweep
    out = tmp_path / "lengths.txt"
    code, printed, err = run_cli(capsys, "data", "lengths", tmp_path / "c.yaml", "--set", "data.seed=3", "--out", out)
    assert code == 0, err
    assert printed.startswith(f"wrote 300 problems to {out}: 1x2 100, 2x1 100, 2x2 100")


def test_ask_prints_raw_output_and_parsed_answer(capsys, trained_run):
    code, out, _ = run_cli(capsys, "ask", trained_run, "12+34")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("output: '") and lines[1].startswith("answer: ")


def test_eval_json_prints_the_eval_object(capsys, trained_run):
    code, out, _ = run_cli(capsys, "eval", trained_run, "--json")
    assert code == 0
    summary = json.loads(out)
    saved = json.loads((trained_run / "eval.json").read_text())
    assert summary["n"] == 400 and summary["accuracy"] == saved["accuracy"]
    assert summary["by_carries"] == saved["by_carries"]


def test_eval_on_a_problem_file(capsys, trained_run, tmp_path):
    problems = tmp_path / "p.txt"
    problems.write_text("12+34=46\n50+50=\n71+8\n")
    code, out, _ = run_cli(capsys, "eval", trained_run, "--problems", problems)
    assert code == 0 and "(" in out and "/3)" in out


def test_python_api_asks_and_evaluates(trained_run):
    run = arithlab.load_run(trained_run)
    answer = run.ask("12+34")
    assert answer.expected == 46 and answer.output.endswith("$")
    assert arithlab.evaluate(run, ["12+34", "50+49=99"])["n"] == 2


def _one_line_error(code, out, err, *needles):
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def test_wrong_answer_in_problem_file_is_one_line_naming_file_and_line(capsys, trained_run, tmp_path):
    problems = tmp_path / "p.txt"
    problems.write_text("12+34=46\n686+753=1438\n")
    _one_line_error(*run_cli(capsys, "eval", trained_run, "--problems", problems), f"{problems}:2", "686+753=1438")


def test_line_that_is_not_a_problem_is_one_line_error(capsys, trained_run, tmp_path):
    problems = tmp_path / "p.txt"
    problems.write_text("hello\n")
    _one_line_error(*run_cli(capsys, "eval", trained_run, "--problems", problems), f"{problems}:1", "hello")


def test_quickstart_summary_names_its_weakest_length_cell(capsys, tmp_path):
    small = ["data.n_train=500", "data.n_val=20", "data.n_test=600", "train.max_iters=10", "model.n_embd=32"]
    small += ["train.threads=1"]
    code, out, _ = run_cli(capsys, "quickstart", "--quiet", "--out", tmp_path / "q", *[f"--set={s}" for s in small])
    assert code == 0
    cells = json.loads((tmp_path / "q" / "eval.json").read_text())["by_lengths"]
    counted = {k: v for k, v in cells.items() if v["n"] >= 20}  # 3x3, 2x3 and 3x2 of 600 uniform problems
    weakest = min(counted, key=lambda k: counted[k]["accuracy"])
    cell = counted[weakest]
    expected = f"(weakest: {weakest.replace('x', '+')}-digit problems, {cell['accuracy']:.2%} of {cell['n']})"
    assert out.startswith("quickstart: ") and expected in out


def test_unknown_config_key_is_one_line_error(capsys, tmp_path):
    _one_line_error(
        *run_cli(capsys, "quickstart", "--out", tmp_path / "q", "--set", "train.max_iter=5"), "train.max_iter"
    )


def test_value_of_wrong_type_is_one_line_error(capsys, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  batch_size: many\n")
    _one_line_error(*run_cli(capsys, "train", config, "--out", tmp_path / "r"), "train.batch_size", "many")


def test_missing_config_file_is_one_line_error(capsys, tmp_path):
    _one_line_error(*run_cli(capsys, "train", tmp_path / "nope.yaml"), "nope.yaml")


def test_run_without_weights_is_one_line_error(capsys, trained_run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(trained_run, broken)
    (broken / "model.safetensors").unlink()
    _one_line_error(*run_cli(capsys, "ask", broken, "1+2"), "model.safetensors")


def test_corrupted_weights_are_one_line_error(capsys, trained_run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(trained_run, broken)
    (broken / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    _one_line_error(*run_cli(capsys, "eval", broken), "model.safetensors")


def test_not_a_run_directory_is_one_line_error(capsys, tmp_path):
    _one_line_error(*run_cli(capsys, "eval", tmp_path / "nothing"), "not a run directory")


def test_question_with_a_character_outside_the_vocabulary_is_one_line_error(capsys, trained_run):
    _one_line_error(*run_cli(capsys, "ask", trained_run, "12+3é"), "12+3é")


def test_existing_run_directory_is_refused(capsys, trained_run):
    _one_line_error(*run_cli(capsys, "quickstart", "--out", trained_run), "--force")


@pytest.mark.parametrize("verb", ["train", "eval", "ask", "inspect", "data", "quickstart", "sweep", "report", "bench"])
def test_every_verb_has_help_with_an_example(capsys, verb):
    with pytest.raises(SystemExit) as exit_info:
        main([verb, "--help"])
    assert exit_info.value.code == 0
    assert "example" in capsys.readouterr().out


def test_unknown_benchmark_is_one_line_error_listing_the_benchmarks(capsys):
    _one_line_error(*run_cli(capsys, "bench", "nope"), "nope", "time_to_accuracy")


def test_block_size_too_small_for_the_samples_is_one_line_error(capsys, tmp_path):
    code, out, err = run_cli(capsys, "quickstart", "--out", tmp_path / "q", "--set", "model.block_size=10")
    _one_line_error(code, out, err, "model.block_size", "too small")


def test_version_and_no_verb_listing_the_verbs(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out == f"arithlab {arithlab.__version__}\n"
    code, out, _ = run_cli(capsys)
    assert code == 0
    for verb in (
        "train",
        "eval",
        "ask",
        "inspect",
        "export",
        "data",
        "quickstart",
        "sweep",
        "report",
        "completion",
        "bench",
    ):
        assert f"    {verb}" in out, verb


def test_problem_file_with_a_byte_order_mark_is_read(capsys, trained_run, tmp_path):
    problems = tmp_path / "p.txt"
    problems.write_bytes("\ufeff12+34=46\n50+49\n".encode())
    code, out, err = run_cli(capsys, "eval", trained_run, "--problems", problems, "--json")
    assert code == 0 and err == "" and json.loads(out)["n"] == 2


def test_problems_longer_than_the_model_are_counted_and_scored_wrong(capsys, trained_run, tmp_path):
    problems = tmp_path / "p.txt"
    problems.write_text("12+34\n50+49\n123456789012345678901234567890+1\n")
    code, out, err = run_cli(capsys, "eval", trained_run, "--problems", problems, "--json")
    summary = json.loads(out)
    assert code == 0 and summary["too_long"] == 1 and summary["n"] == 3 and summary["correct"] <= 2
    assert err == (
        "arithlab: note: 1 of 3 problems are longer than the model can read and write (29 tokens) and were "
        "scored wrong; --strict makes them an error\n"
    )
