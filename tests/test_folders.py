"""Folders: a user's files survive every command, one writer per run, and a run stopped
anywhere resumes from whole files."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys

import pytest
import yaml

from arithlab.cli import main
from arithlab.folders import MARKER

CONFIG = {
    "data": {"digits": 2, "n_train": 300, "n_val": 20, "n_test": 40},
    "model": {"n_layer": 1, "n_embd": 32, "n_head": 2},
    "train": {"batch_size": 32, "max_iters": 200, "eval_interval": 50, "threads": 1},
}


def _config(tmp_path, name="c.yaml", data=(), **train):
    path = tmp_path / name
    path.write_text(
        json.dumps({**CONFIG, "data": {**CONFIG["data"], **dict(data)}, "train": {**CONFIG["train"], **train}})
    )
    return path


def _unfinished(trained_run, tmp_path):
    """A copy of the session's trained run, as if stopped after its last checkpoint."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "eval.json").unlink()
    return run


def test_a_users_folder_survives_train_export_and_data_make_even_with_force(capsys, tmp_path, trained_run):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "train.txt").write_text("my own notes\n")
    config = _config(tmp_path)
    for args in (
        ["train", config, "--out", mine, "--force"],
        ["export", trained_run, "--hf", mine, "--force"],
        ["data", "make", config, "--out", mine],
        ["data", "make", config, "--out", mine, "--force"],
    ):
        assert main([str(a) for a in args]) == 2
        err = capsys.readouterr().err
        assert "was not made by arithlab" in err and "--force" not in err, err
    assert [p.name for p in mine.iterdir()] == ["train.txt"]
    assert (mine / "train.txt").read_text() == "my own notes\n"


@pytest.mark.parametrize("out", [".", "..", "{top}", "{home}"])
def test_the_current_folder_those_above_it_and_home_are_refused_even_with_force(capsys, tmp_path, monkeypatch, out):
    here = tmp_path / "top" / "project"
    here.mkdir(parents=True)
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(here)
    for folder in (here, here.parent, tmp_path / "home"):  # even a folder marked as a run of ours
        (folder / MARKER).write_text(json.dumps({"kind": "run"}))
        (folder / "keep.txt").write_text("keep\n")
    target = out.format(top=tmp_path / "top", home=tmp_path / "home")
    assert main(["train", str(_config(tmp_path)), "--out", target, "--force"]) == 2
    assert "is the current folder, one above it or the home folder" in capsys.readouterr().err
    for folder in (here, here.parent, tmp_path / "home"):
        assert (folder / "keep.txt").exists()


def test_two_trainings_started_at_once_on_one_folder_give_one_run_and_one_refusal(tmp_path):
    run = tmp_path / "run"
    configs = [_config(tmp_path, "plain.yaml", {"format": "plain"}, seed=2), _config(tmp_path, "reverse.yaml", seed=3)]
    command = [sys.executable, "-m", "arithlab", "train", "--quiet", "--out", str(run)]
    procs = [subprocess.Popen([*command, str(c)], stderr=subprocess.PIPE, text=True) for c in configs]
    errors = [proc.communicate(timeout=300)[1] for proc in procs]
    codes = [proc.returncode for proc in procs]
    assert sorted(codes) == [0, 2], errors
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    refusal = errors[loser].strip()
    assert len(refusal.splitlines()) == 1 and "Traceback" not in refusal
    held = f"is being written by pid {procs[winner].pid} on {socket.gethostname()}; one writer at a time"
    assert held in refusal or "already exists: --resume continues it" in refusal, refusal
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert (cfg["data"]["format"], cfg["train"]["seed"]) == [("plain", 2), ("reverse", 3)][winner]
    iters = [json.loads(line)["iter"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert iters == [50, 100, 150, 200]
    assert json.loads((run / "eval.json").read_text())["n"] == 40


def test_a_second_writer_is_told_who_holds_the_run(capsys, tmp_path, trained_run):
    run = _unfinished(trained_run, tmp_path)
    hold = f"from arithlab.folders import lock\nwith lock(__import__('pathlib').Path({str(run)!r})):\n"
    hold += "    print('held', flush=True); __import__('time').sleep(60)\n"
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert main(["train", "--resume", str(run)]) == 2
        err = capsys.readouterr().err
        assert err == (
            f"arithlab: error: {run} is being written by pid {holder.pid} on {socket.gethostname()}; "
            "one writer at a time: wait for it\n"
        )
    finally:
        holder.kill()
        holder.wait()
    assert not (run / "eval.json").exists()


def test_a_checkpoint_swap_cut_short_by_a_kill_is_recovered_on_resume(capsys, tmp_path, trained_run):
    run = _unfinished(trained_run, tmp_path)
    (run / "checkpoint").rename(run / "checkpoint.old")  # killed between the swap's two renames
    (run / "checkpoint.tmp").mkdir()  # and a new one half written
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert json.loads((run / "checkpoint" / "state.json").read_text())["iter"] == 1000
    assert (run / "eval.json").exists() and not (run / "checkpoint.old").exists()


def test_resume_drops_metrics_logged_after_the_checkpoint_and_any_half_line(tmp_path, trained_run):
    run = _unfinished(trained_run, tmp_path)
    whole = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(whole + json.dumps({"iter": 1200, "loss": 1.0}) + '\n{"iter": 12')
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert (run / "metrics.jsonl").read_text() == whole


def test_resume_may_change_the_thread_count_with_a_note(capsys, tmp_path, trained_run):
    run = _unfinished(trained_run, tmp_path)
    other = 2 if yaml.safe_load((run / "config.yaml").read_text())["train"]["threads"] == 1 else 1  # not the run's
    assert main(["train", "--resume", str(run), "--set", f"train.threads={other}"]) == 0
    err = capsys.readouterr().err
    assert (
        f"arithlab: note: resuming with train.threads={other}: the continuation is no longer bit-identical to an "
        "uninterrupted run (thread count, device and precision change floating-point results)\n"
    ) in err
    assert f"tiny ({other} thread" in err  # the progress line
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["threads"] == other


def test_a_new_run_records_its_thread_count_and_says_it(capsys, tmp_path):
    assert main(["train", str(_config(tmp_path, threads=None, max_iters=2)), "--out", str(tmp_path / "r")]) == 0
    threads = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["train"]["threads"]
    assert 1 <= threads <= 4
    assert f"({threads} thread" in capsys.readouterr().err
