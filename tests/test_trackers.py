"""train.log_to: every metrics.jsonl line also in TensorBoard and W&B (offline), resumed runs
continuing the same tracker run; a tracker not installed is a one-line error."""

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import tiny_config

from arithlab import rundir
from arithlab.cli import main
from arithlab.errors import ArithlabError
from arithlab.experiments import load_sweep
from arithlab.trainer import train

SHORT = ["train.max_iters=60", "train.eval_interval=20", "data.n_val=20", "data.n_test=20"]
# Long enough to be killed after its first checkpoint.
KILLABLE = [
    "model.n_layer=1",
    "model.n_embd=32",
    "train.batch_size=32",
    "train.max_iters=300",
    "train.eval_interval=50",
]


def _metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _tensorboard_scalars(run) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _assert_same_as_metrics(scalars: dict, metrics: list[dict]) -> None:
    keys = set(metrics[0]) - {"iter"}
    assert set(scalars) == keys
    for key in keys:
        assert [step for step, _ in scalars[key]] == [row["iter"] for row in metrics], key
        assert [value for _, value in scalars[key]] == pytest.approx([row[key] for row in metrics], rel=1e-6), key


def test_tensorboard_gets_every_metrics_line_at_its_iteration(tmp_path):
    pytest.importorskip("tensorboard")
    run = train(tiny_config(*SHORT, "train.log_to=[tensorboard]"), tmp_path / "tb", progress=False)
    metrics = _metrics(run)
    assert [row["iter"] for row in metrics] == [20, 40, 60]
    _assert_same_as_metrics(_tensorboard_scalars(run), metrics)


def _wandb_runs(run) -> list[dict]:
    """What each offline W&B run in run directory `run` recorded (a resumed run makes one
    more): its id, name, group and config, and its history rows by step, read from its .wandb file
    (records in LevelDB's log format: 32 KiB blocks, each record a 7-byte header then its
    bytes, a record that crosses blocks cut into first, middle and last pieces)."""
    from wandb.proto import wandb_internal_pb2

    runs = []
    for path in sorted((run / "wandb").glob("offline-run-*/*.wandb")):
        data, pos, pending = path.read_bytes(), 7, b""  # after the file's own header
        found = {"history": {}}
        while pos + 7 <= len(data):
            if 32768 - pos % 32768 < 7:  # a block's last bytes, too few for a header: padding
                pos += 32768 - pos % 32768
                continue
            length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
            pending += data[pos + 7 : pos + 7 + length]
            pos += 7 + length
            if kind in (1, 4):  # a whole record, or the last piece of one
                record = wandb_internal_pb2.Record()
                record.ParseFromString(pending)
                pending = b""
                if record.HasField("run"):
                    found.update(id=record.run.run_id, name=record.run.display_name, group=record.run.run_group)
                    found["config"] = {u.key: json.loads(u.value_json) for u in record.run.config.update}
                if record.HasField("history"):
                    items = {item.key or "/".join(item.nested_key): item.value_json for item in record.history.item}
                    row = {k: json.loads(v) for k, v in items.items() if not k.startswith("_")}  # not W&B's own
                    found["history"][record.history.step.num] = row
        runs.append(found)
    return runs


def _by_iter(metrics: list[dict]) -> dict[int, dict]:
    return {row["iter"]: {k: v for k, v in row.items() if k != "iter"} for row in metrics}


@pytest.fixture
def wandb_offline(monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def test_wandb_offline_run_holds_every_metrics_line_with_the_resolved_config(tmp_path, wandb_offline):
    cfg = tiny_config(*SHORT, "train.log_to=[wandb]", "train.log_group=grid")
    run = train(cfg, tmp_path / "wb", progress=False)
    (recorded,) = _wandb_runs(run)
    assert recorded["id"] == (run / "wandb_id.txt").read_text().strip()
    assert (recorded["name"], recorded["group"]) == ("wb", "grid")
    assert recorded["history"] == _by_iter(_metrics(run))
    assert {key: recorded["config"][key] for key in ("name", "data", "model", "train", "eval")} == json.loads(
        json.dumps(rundir.load_run_config(run).to_dict())
    )  # the resolved config, as config.yaml holds it


def test_a_killed_run_resumed_continues_its_tracker_runs(tmp_path, wandb_offline):
    pytest.importorskip("tensorboard")
    config, run = tmp_path / "c.yaml", tmp_path / "run"
    tiny_config(*KILLABLE, "train.log_to=[tensorboard, wandb]").save(config)
    # Its own W&B service, as a process of its own would have, not this one's (which a killed run would hold).
    env = {key: value for key, value in os.environ.items() if key != "WANDB_SERVICE"}
    command = [sys.executable, "-m", "arithlab", "train", str(config), "--quiet", "--out", str(run)]
    proc = subprocess.Popen(command, env=env)
    deadline = time.time() + 120
    while not (run / "checkpoint" / "state.json").exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    # W&B names an offline run's folder by the second it started, adding "-1" to the second
    # of two in one second; the killed run can reach its checkpoint within a second.
    time.sleep(1)
    assert not (run / "eval.json").exists()
    resumed_from = json.loads((run / "checkpoint" / "state.json").read_text())["iter"]
    assert main(["train", "--quiet", "--resume", str(run)]) == 0
    metrics = _metrics(run)
    assert [row["iter"] for row in metrics] == list(range(50, 301, 50))
    # TensorBoard: one log, what the killed process wrote past the checkpoint purged.
    _assert_same_as_metrics(_tensorboard_scalars(run), metrics)
    # W&B: the same run (id) taken up again, from the iteration after the checkpoint on. (What
    # the killed process logged may be lost: W&B writes its file from a buffer.)
    run_id = (run / "wandb_id.txt").read_text().strip()
    assert [path.name[-len(run_id) :] for path in sorted((run / "wandb").glob("offline-run-*"))] == [run_id] * 2
    killed, resumed = _wandb_runs(run)
    assert resumed["id"] == run_id
    expected = _by_iter(metrics)
    assert resumed["history"] == {step: row for step, row in expected.items() if step > resumed_from}
    assert killed["history"].items() <= expected.items()


def test_a_tracker_not_installed_is_a_one_line_error_naming_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed: importing it fails
    with pytest.raises(ArithlabError, match=r"pip install 'arithlab\[wandb\]'"):
        train(tiny_config(*SHORT, "train.log_to=[wandb]"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_an_unknown_tracker_is_a_config_error_naming_the_key():
    with pytest.raises(ArithlabError, match="config key train.log_to: unknown tracker 'mlflow'"):
        tiny_config("train.log_to=[mlflow]")


def test_each_sweep_point_is_a_tracker_run_in_the_sweeps_group(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: grid\nset: {train.log_to: [tensorboard]}\naxes:\n  train.seed: [0, 1]\n")
    name, points = load_sweep(sweep)
    assert name == "grid" and [p.config.train.log_group for p in points] == ["grid", "grid"]
