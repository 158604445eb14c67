import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import tiny_config
from safetensors.torch import load_file

from arithlab import rundir, trainer
from arithlab.errors import ArithlabError
from arithlab.trainer import learning_rate, train


def test_tiny_model_learns_two_digit_addition(trained_run):
    summary = json.loads((trained_run / "eval.json").read_text())
    assert summary["n"] == 400
    # Chance is far below 1%; the model must really have learned to add.
    assert summary["accuracy"] >= 0.9
    assert set(summary) >= {"accuracy", "n", "by_digits", "by_carries"}
    # All 100 one-digit pairs are in training, so the disjoint test set has none.
    assert set(summary["by_digits"]) == {"2"}
    # The rare length pairs too (about 30 problems each; without balanced length pairs the
    # same model had 37% on 2+1 digits).
    cells = summary["by_lengths"]
    assert set(cells) == {"1x2", "2x1", "2x2"}
    assert all(cell["accuracy"] >= 0.9 for cell in cells.values()), cells


def test_run_directory_holds_every_file_of_the_contract(trained_run):
    for name in (
        "config.yaml",
        "vocab.json",
        "model.safetensors",
        "metrics.jsonl",
        "eval.json",
        "predictions.jsonl",
        "data.json",
        "env.json",
        "train.txt",
        "validation.txt",
        "test.txt",
    ):
        assert (trained_run / name).is_file(), name
    assert (trained_run / "checkpoint" / "state.json").is_file()
    data = json.loads((trained_run / "data.json").read_text())
    assert data["overlap"] == {"train_test": 0, "train_validation": 0, "validation_test": 0}
    metrics = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [m["iter"] for m in metrics] == [200, 400, 600, 800, 1000]
    assert metrics[-1]["tokens_seen"] > metrics[0]["tokens_seen"] > 0
    cfg = rundir.load_run_config(trained_run)
    assert cfg.model.n_layer == 2 and cfg.model.block_size is not None  # fully resolved
    predictions = (trained_run / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 400


def test_learning_rate_warms_up_then_decays_to_a_tenth():
    cfg = tiny_config("train.lr=1e-3", "train.warmup_iters=10", "train.max_iters=100").train
    assert learning_rate(0, cfg) == pytest.approx(1e-4)
    assert learning_rate(9, cfg) == pytest.approx(1e-3)
    assert learning_rate(100, cfg) == pytest.approx(1e-4)
    assert learning_rate(55, cfg) == pytest.approx(5.5e-4)


def test_existing_run_directory_is_not_overwritten_without_force(trained_run, tmp_path):
    with pytest.raises(ArithlabError, match="--resume continues it, --force replaces it"):
        train(tiny_config(), trained_run, progress=False)


RESUME_SETTINGS = [
    "model.n_layer=1",
    "model.n_embd=32",
    "model.n_head=2",
    "train.batch_size=32",
    "train.max_iters=300",
    "train.eval_interval=50",
    "data.n_train=500",
    "data.n_val=20",
    "data.n_test=50",
    "train.threads=1",
    "model.dropout=0.1",
]


# The digit places of `coupled` positions are computed afresh at every step: resuming
# needs no state of theirs, which the second case checks.
POSITIONS = {
    "learned": [],
    "coupled": ["model.positions=coupled", "data.format=reverse_all"],
    # The gaps are drawn from the run's generator, which the checkpoint keeps.
    "gaps": ["train.position_gaps=3"],
}


@pytest.fixture(scope="module", params=list(POSITIONS))
def positions(request):
    return request.param


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, positions):
    out = tmp_path_factory.mktemp("resume") / "whole"
    train(tiny_config(*RESUME_SETTINGS, *POSITIONS[positions]), out, progress=False)
    return out


def _interrupt_after_first_checkpoint(out, sig, settings):
    config = out.parent / f"{out.name}.yaml"
    tiny_config(*RESUME_SETTINGS, *settings).save(config)
    proc = subprocess.Popen(
        [sys.executable, "-m", "arithlab", "train", str(config), "--quiet", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (out / "checkpoint" / "state.json").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    return proc.returncode


# SIGTERM, as a scheduler or `kill` sends it, is honoured as Ctrl-C is: a checkpoint, then out.
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "terminated", "killed"])
def test_interrupted_run_resumes_to_exactly_the_uninterrupted_result(positions, uninterrupted, tmp_path, sig):
    out = tmp_path / "run"
    code = _interrupt_after_first_checkpoint(out, sig, POSITIONS[positions])
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 130)  # 130: it saved its checkpoint and left
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert 0 < state["iter"] < 300
    assert not (out / "eval.json").exists()
    done = subprocess.run(
        [sys.executable, "-m", "arithlab", "train", "--quiet", "--resume", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    _assert_same_run(out, uninterrupted)


def _assert_same_run(out, uninterrupted):
    """The same weights, metrics (but their times) and test accuracy as the uninterrupted run."""
    whole = load_file(str(uninterrupted / "model.safetensors"))
    resumed = load_file(str(out / "model.safetensors"))
    assert whole.keys() == resumed.keys()
    for key in whole:
        assert torch.equal(whole[key], resumed[key]), key

    def without_time(path):
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in path.read_text().splitlines()]

    assert without_time(out / "metrics.jsonl") == without_time(uninterrupted / "metrics.jsonl")
    assert (
        json.loads((out / "eval.json").read_text())["accuracy"]
        == json.loads((uninterrupted / "eval.json").read_text())["accuracy"]
    )


def test_ctrl_c_in_a_step_that_ends_at_an_evaluation_resumes_with_that_evaluation(
    positions, uninterrupted, tmp_path, monkeypatch
):
    # Ctrl-C lands during step 100, the evaluation after it is due (every 50): the run
    # logs that evaluation before it stops, or the resumed run would never have it.
    step = trainer._step

    def step_then_ctrl_c(*args):
        step(*args)
        if args[-1].iter == 100:  # the training state
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(trainer, "_step", step_then_ctrl_c)
    out = tmp_path / "run"
    config = tiny_config(*RESUME_SETTINGS, *POSITIONS[positions])
    with pytest.raises(KeyboardInterrupt):
        train(config, out, progress=False)
    monkeypatch.undo()
    assert json.loads((out / "checkpoint" / "state.json").read_text())["iter"] == 100
    train(config, out, resume=True, progress=False)
    _assert_same_run(out, uninterrupted)


def test_resume_of_a_missing_run_is_a_clear_error(tmp_path):
    with pytest.raises(ArithlabError, match="no run to resume"):
        train(tiny_config(), tmp_path / "nothing", resume=True, progress=False)


def test_stream_objective_trains_and_evaluates(tmp_path):
    out = train(
        tiny_config(*RESUME_SETTINGS, "train.objective=stream", "train.max_iters=20", "model.block_size=64"),
        tmp_path / "stream",
        progress=False,
    )
    summary = json.loads((out / "eval.json").read_text())
    # Windows leave room for the tiny config's position shifts of up to 8.
    assert summary["n"] == 50 and summary["tokens_seen"] == 20 * 32 * (64 - 8)


def test_target_accuracy_stops_at_the_first_evaluation_that_reaches_it(tmp_path):
    out = train(tiny_config(*RESUME_SETTINGS, "train.target_accuracy=0.0"), tmp_path / "early", progress=False)
    summary = json.loads((out / "eval.json").read_text())
    assert summary["iters"] == 50 and summary["stop_reason"] == "target_accuracy"
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


def _train_until(cfg, out, iteration, monkeypatch):
    """Train `cfg` into `out`, stopped (KeyboardInterrupt, no checkpoint of its own) before
    step `iteration`; returns trainer._step as it was."""
    from arithlab import trainer

    real_step = trainer._step

    def stopped(*args):
        if args[-1].iter == iteration:
            raise KeyboardInterrupt
        real_step(*args)

    monkeypatch.setattr(trainer, "_step", stopped)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, out, progress=False)
    return real_step


def test_target_patience_waits_for_that_many_evaluations_in_a_row_and_survives_a_resume(tmp_path, monkeypatch):
    from arithlab import trainer

    # Validation scripted as 99%, 50%, then 99% on: the miss starts the count again, so
    # patience 2 stops at the 4th evaluation (iteration 200), not the 2nd.
    accuracies = iter([0.99, 0.5, 0.99, 0.99, 0.99, 0.99])
    real_evaluate = trainer.evaluate

    def scripted(*args, **kwargs):
        summary, predictions = real_evaluate(*args, **kwargs)
        return {**summary, "accuracy": next(accuracies)}, predictions

    monkeypatch.setattr(trainer, "evaluate", scripted)
    cfg = tiny_config(*RESUME_SETTINGS, "train.target_accuracy=0.9", "train.target_patience=2")
    summary = json.loads((train(cfg, tmp_path / "scripted", progress=False) / "eval.json").read_text())
    assert summary["iters"] == 200 and summary["stop_reason"] == "target_accuracy"
    monkeypatch.undo()

    # Every evaluation reaches a target of 0; killed after the first, the resumed run still
    # stops at the third: the count is in the checkpoint.
    cfg = tiny_config(*RESUME_SETTINGS, "train.target_accuracy=0.0", "train.target_patience=3")
    _train_until(cfg, tmp_path / "cut", 60, monkeypatch)
    monkeypatch.undo()
    assert json.loads((tmp_path / "cut" / "checkpoint" / "state.json").read_text())["evals_at_target"] == 1
    summary = json.loads((train(cfg, tmp_path / "cut", resume=True, progress=False) / "eval.json").read_text())
    assert summary["iters"] == 150 and summary["stop_reason"] == "target_accuracy"


def _scripted_validation(monkeypatch, accuracies):
    """trainer.evaluate, with each validation's accuracy taken from `accuracies` in turn
    (the test's own evaluation untouched: it has more problems)."""
    from arithlab import evaluator, trainer

    scores, real_evaluate = iter(accuracies), evaluator.evaluate

    def scripted(model, tokenizer, fmt, problems, **kwargs):
        summary, predictions = real_evaluate(model, tokenizer, fmt, problems, **kwargs)
        return ({**summary, "accuracy": next(scores)} if len(problems) == 20 else summary), predictions

    monkeypatch.setattr(trainer, "evaluate", scripted)


def test_keep_best_tests_the_latest_best_validation_weights_and_resumes_exactly(tmp_path, monkeypatch):
    from arithlab import trainer

    # Validations at 50, 100, ..., 300: the best (0.9) at 100 and again at 150; the run's
    # weights are those of iteration 150, not 300.
    scores = [0.2, 0.9, 0.9, 0.5, 0.3, 0.1]
    cfg = tiny_config(*RESUME_SETTINGS, "train.keep_best=true")
    _scripted_validation(monkeypatch, scores)
    whole = train(cfg, tmp_path / "whole", progress=False)
    summary = json.loads((whole / "eval.json").read_text())
    assert (summary["iters"], summary["best_iter"], summary["best_val_accuracy"]) == (300, 150, 0.9)

    # The same run stopped at iteration 160: its checkpoint holds iteration 150's weights.
    _scripted_validation(monkeypatch, scores[:3])
    real_step = _train_until(cfg, tmp_path / "cut", 160, monkeypatch)
    at_150 = load_file(str(tmp_path / "cut" / "checkpoint" / "model.safetensors"))
    kept = load_file(str(whole / "model.safetensors"))
    last = load_file(str(whole / "checkpoint" / "model.safetensors"))
    assert kept.keys() == at_150.keys()
    assert all(torch.equal(kept[k], at_150[k]) for k in kept)
    assert not all(torch.equal(kept[k], last[k]) for k in kept)

    # Resumed, it keeps the best from before the stop and ends as the whole run did.
    monkeypatch.setattr(trainer, "_step", real_step)
    _scripted_validation(monkeypatch, scores[3:])
    resumed = train(cfg, tmp_path / "cut", resume=True, progress=False)
    weights = load_file(str(resumed / "model.safetensors"))
    assert all(torch.equal(kept[k], weights[k]) for k in kept)
    assert json.loads((resumed / "eval.json").read_text())["best_iter"] == 150


def test_random_position_offsets_train_and_leave_room_in_the_block(tmp_path):
    plain = train(
        tiny_config(*RESUME_SETTINGS, "train.max_iters=20", "train.position_offset=0"),
        tmp_path / "plain",
        progress=False,
    )
    shifted = train(
        tiny_config(*RESUME_SETTINGS, "train.max_iters=20", "train.position_offset=7"),
        tmp_path / "shifted",
        progress=False,
    )
    block = {run: rundir.load_run_config(run).model.block_size for run in (plain, shifted)}
    assert block[shifted] == block[plain] + 7
    plain_weights = load_file(str(plain / "model.safetensors"))
    shifted_weights = load_file(str(shifted / "model.safetensors"))
    # The shifts reach the position embeddings beyond the unshifted block.
    assert shifted_weights["transformer.wpe.weight"].shape[0] == plain_weights["transformer.wpe.weight"].shape[0] + 7
    assert json.loads((shifted / "eval.json").read_text())["n"] == 50


def test_position_gaps_train_and_leave_room_for_a_gap_before_each_number_and_the_answer(tmp_path):
    settings = [*RESUME_SETTINGS, "train.max_iters=20", "train.position_offset=0"]
    plain = train(tiny_config(*settings), tmp_path / "plain", progress=False)
    gapped = train(tiny_config(*settings, "train.position_gaps=4"), tmp_path / "gapped", progress=False)
    block = {run: rundir.load_run_config(run).model.block_size for run in (plain, gapped)}
    assert block[gapped] == block[plain] + 3 * 4  # before a, before b, before the answer
    assert json.loads((gapped / "eval.json").read_text())["n"] == 50


def test_time_budget_stops_training_and_still_tests(tmp_path):
    out = train(tiny_config(*RESUME_SETTINGS, "train.max_minutes=0.0"), tmp_path / "budget", progress=False)
    summary = json.loads((out / "eval.json").read_text())
    assert summary["iters"] == 1 and summary["stop_reason"] == "max_minutes" and summary["n"] == 50


def test_one_model_learns_several_operations_and_reports_each(tmp_path):
    out = train(
        tiny_config(*RESUME_SETTINGS, "data.operations=[add, sub]", "data.sampling=uniform", "train.max_iters=20"),
        tmp_path / "mixed",
        progress=False,
    )
    summary = json.loads((out / "eval.json").read_text())
    assert summary["n"] == 100 and set(summary["by_operation"]) == {"add", "sub"}
    assert all(cell["n"] == 50 for cell in summary["by_operation"].values())


def test_mix_formats_without_a_text_file_changes_the_training_stream(tmp_path):
    # The stream objective builds its stream in one place (data.training_stream): formats
    # mixed in reach training with or without a text file.
    settings = ["train.objective=stream", "model.block_size=128", "train.max_iters=3", "train.eval_interval=3"]
    settings += ["model.n_layer=1", "model.n_embd=32", "model.n_head=2", "data.n_val=5", "data.n_test=5"]
    alone = train(tiny_config(*settings), tmp_path / "alone", progress=False)
    mixed = train(tiny_config(*settings, "data.mix_formats=[simplified]"), tmp_path / "mixed", progress=False)
    weights = [load_file(run / "model.safetensors") for run in (alone, mixed)]
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_checkpoint_written_before_train_state_had_every_key_resumes_exactly(tmp_path, monkeypatch):
    # Before the TrainState dataclass, a checkpoint taken ahead of the first evaluation
    # had no last_loss and no stop_reason in state.json: such a run must still resume,
    # to the same weights as a run never interrupted.
    from arithlab import trainer

    cfg = tiny_config(*RESUME_SETTINGS, "train.max_iters=6", "train.eval_interval=3")
    whole = load_file(str(train(cfg, tmp_path / "whole", progress=False) / "model.safetensors"))
    real_step = trainer._step

    def killed_at_iteration_4(*args):
        if args[-1].iter == 4:  # the state, after the checkpoint at iteration 3
            raise KeyboardInterrupt
        real_step(*args)

    monkeypatch.setattr(trainer, "_step", killed_at_iteration_4)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", progress=False)
    monkeypatch.undo()
    state_file = tmp_path / "cut" / "checkpoint" / "state.json"
    state = json.loads(state_file.read_text())
    assert state["iter"] == 3 and state["stop_reason"] is None
    state_file.write_text(json.dumps({k: v for k, v in state.items() if k not in ("last_loss", "stop_reason")}))
    resumed = load_file(str(train(cfg, tmp_path / "cut", resume=True, progress=False) / "model.safetensors"))
    assert whole.keys() == resumed.keys()
    assert all(torch.equal(whole[key], resumed[key]) for key in whole)
