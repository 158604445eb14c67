"""Sweeps: a tiny 2x2 grid runs, resumes after a killed run, and is reported."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY_OVERRIDES
from test_report_html import check_self_contained

from arithlab.cli import main
from arithlab.data import length_test, write_problems
from arithlab.errors import ArithlabError
from arithlab.experiments import describe_points, load_sweep, run_sweep
from arithlab.plots import group_of, lengths_table, report, samples_table

TINY = {key: value for key, value in (o.split("=", 1) for o in TINY_OVERRIDES)}


def _sweep_file(tmp_path, more_settings=(), **extra):
    settings = {
        **TINY,
        "model.n_layer": 1,
        "model.n_embd": 32,
        "model.n_head": 2,
        "train.max_iters": 60,
        "train.eval_interval": 20,
        "train.threads": 1,
        "data.n_train": 300,
        "data.n_val": 20,
        "data.n_test": 40,
        **dict(more_settings),
    }
    settings.pop("name")
    spec = {
        "name": "tiny",
        "set": {k: _yaml_value(v) for k, v in settings.items()},
        "axes": {"data.n_train": [150, 300]},
        "linked": [{"data.format": "plain", "train.lr": 3e-3}, {"data.format": "reverse", "train.lr": 4e-3}],
        **extra,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


def _yaml_value(text):
    import yaml

    return yaml.safe_load(text) if isinstance(text, str) else text


def test_points_are_the_product_of_axes_and_linked_settings(tmp_path):
    _, points = load_sweep(_sweep_file(tmp_path))
    assert [(p.config.data.format, p.config.data.n_train, p.config.train.lr) for p in points] == [
        ("plain", 150, 3e-3),
        ("plain", 300, 3e-3),
        ("reverse", 150, 4e-3),
        ("reverse", 300, 4e-3),
    ]
    assert len({p.name for p in points}) == 4
    assert len(describe_points(_sweep_file(tmp_path))) == 4


def test_only_runs_the_points_its_patterns_name(tmp_path, capsys):
    path, out = _sweep_file(tmp_path), tmp_path / "runs"
    assert main(["sweep", str(path), "--dry-run", "--only", "reverse_*", "--only", "*-150"]) == 0
    listed = [line.split(":")[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == ["plain_n_train-150", "reverse_n_train-150", "reverse_n_train-300"]
    lines = []
    run_sweep(path, out=out, log=lines.append, only=["plain_n_train-300"])
    assert [p.parent.name for p in out.glob("*/eval.json")] == ["plain_n_train-300"]
    assert lines[-1].startswith("sweep tiny: 1 of 1 points done")
    # The sweep's record still names every point, so that a report sees the whole grid.
    assert len(json.loads((out / "sweep.json").read_text())["points"]) == 4
    with pytest.raises(ArithlabError, match=r"--only detailed_\*: matches no point of .*sweep.yaml"):
        run_sweep(path, out=out, only=["reverse_*", "detailed_*"])


def test_figure_lines_follow_linked_groups_that_share_a_format(tmp_path):
    linked = [
        {"name": "reverse_scratch", "data.format": "reverse", "model.init": None},
        {"name": "reverse_after_plain", "data.format": "reverse", "model.init": "run:runs/pretrain"},
    ]
    _, points = load_sweep(_sweep_file(tmp_path, linked=linked))
    lines = {group_of(p.settings) for p in points}
    assert lines == {"reverse_scratch", "reverse_after_plain"}
    assert group_of({"data.format": "plain"}) == "plain"


def test_bad_sweep_key_or_value_names_the_point(tmp_path):
    with pytest.raises(ArithlabError, match="unknown sweep keys"):
        load_sweep(_sweep_file(tmp_path, grid=1))
    with pytest.raises(ArithlabError, match="train.nope"):
        load_sweep(_sweep_file(tmp_path, axes={"train.nope": [1]}))


def _sweep_until_a_checkpoint(path, out) -> subprocess.Popen:
    """`arithlab sweep` started in its own process (and process group), once a point has
    written its first checkpoint."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "arithlab", "sweep", str(path), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while not list(out.glob("*/checkpoint/state.json")):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    return proc


def test_sweep_runs_resumes_after_a_killed_run_and_reports(tmp_path):
    # Every point is also scored on one length-stratified file, disjoint from all their training sets.
    lengths_file = tmp_path / "lengths.txt"
    write_problems(lengths_file, length_test([p.config.data for p in load_sweep(_sweep_file(tmp_path))[1]], 10, 0))
    path = _sweep_file(tmp_path, {"data.extra_test_file": str(lengths_file)})
    out = tmp_path / "runs"
    # Start the sweep in its own process and kill it while the first point trains.
    proc = _sweep_until_a_checkpoint(path, out)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted = [
        p.parent.parent.name
        for p in out.glob("*/checkpoint/state.json")
        if not (p.parent.parent / "eval.json").exists()
    ]
    assert interrupted
    lines = []
    run_sweep(path, jobs=2, out=out, log=lines.append)
    assert len(list(out.glob("*/eval.json"))) == 4
    assert lines[-1].startswith("sweep tiny: 4 of 4 points done")
    # The killed point continued from its checkpoint: one row per evaluation, none twice.
    for name in interrupted:
        iters = [json.loads(line)["iter"] for line in (out / name / "metrics.jsonl").read_text().splitlines()]
        assert iters == [20, 40, 60]
    again = []
    run_sweep(path, jobs=2, out=out, log=again.append)
    assert sum("skipped" in line for line in again) == 4
    # The sweep file edited after its runs: refused before anything runs, the runs kept.
    edited = json.loads(path.read_text())
    edited["linked"][1]["train.lr"] = 5e-3
    path.write_text(json.dumps(edited))
    with pytest.raises(
        ArithlabError, match=r"reverse_n_train-150 was trained with other settings.*train\.lr: 0\.004, now 0\.005"
    ):
        run_sweep(path, jobs=2, out=out, log=again.append)
    assert len(list(out.glob("*/eval.json"))) == 4
    path.write_text(json.dumps({**edited, "linked": [edited["linked"][0], {**edited["linked"][1], "train.lr": 4e-3}]}))
    page = report(out)
    check_self_contained(out)  # report.html: the same page, every figure embedded
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 4 and {r["data.format"] for r in rows} == {"plain", "reverse"}
    assert all(float(r["accuracy"]) >= 0 and int(r["tokens_seen"]) > 0 for r in rows)
    text = page.read_text()
    for figure in (
        "accuracy_vs_samples.png",
        "accuracy_vs_tokens.png",
        "learning_curves.png",
        "accuracy_by_carries.png",
    ):
        assert (out / figure).stat().st_size > 1000 and f"]({figure})" in text
    # The headline layout: a row per size, a column per format, one seed each (sd 0).
    for r in rows:
        size = f"{int(r['data.n_train']):,}"
        line = next(line for line in text.splitlines() if line.startswith(f"| {size} |"))
        column = ["plain", "reverse"].index(r["data.format"]) + 1
        assert line.split(" | ")[column].strip(" |") == f"{100 * float(r['accuracy']):.2f} ± 0.00"
    assert "| training samples | plain | reverse |" in text and "| samples to 90% |" in text
    # Per-length cells from the stratified file: 1x2, 2x1 and 2x2 (1x1 is all in training).
    extra = json.loads((out / rows[0]["run"] / "eval.json").read_text())["extra_test"]
    assert extra["n"] == 30 and set(extra["by_lengths"]) == {"1x2", "2x1", "2x2"}
    assert "by operand lengths (digits of a x digits of b), the length-stratified extra test" in text
    assert "| line | training samples | 1x2 | 2x1 | 2x2 | weakest |" in text
    # --study adds the study's published curves (dashed) to the samples figure.
    ours = (out / "accuracy_vs_samples.png").read_bytes()
    report(out, study=True)
    assert (out / "accuracy_vs_samples.png").read_bytes() != ours


def test_samples_table_gives_mean_sd_and_fewest_samples_to_90_percent():
    rows = [
        {"status": "done", "data.format": f, "data.n_train": n, "accuracy": a}
        for f, n, a in [
            ("plain", 250, 0.0),
            ("plain", 250, 0.2),
            ("plain", 500, 0.5),
            ("detailed", 250, 0.95),
            ("detailed", 500, 0.99),
        ]
    ] + [{"status": "failed", "data.format": "plain", "data.n_train": 500}]
    assert samples_table(rows).splitlines() == [
        "| training samples | detailed | plain |",
        "|---|---|---|",
        "| 250 | 95.00 ± 0.00 | 10.00 ± 10.00 |",
        "| 500 | 99.00 ± 0.00 | 50.00 ± 0.00 |",
        "| samples to 90% | 250 | > 500 |",
    ]


def test_lengths_table_gives_each_cell_mean_over_seeds_and_the_weakest_cell():
    def row(fmt, n, cells, status="done"):
        lengths = {f"lengths_{k}": v for k, v in cells.items()}
        return {"status": status, "data.format": fmt, "data.n_train": n, **lengths}

    rows = [
        row("reverse", 500, {"1x2": 0.5, "2x1": 1.0, "2x2": 1.0}),
        row("reverse", 500, {"1x2": 0.7, "2x1": 0.9, "2x2": 1.0}),
        row("reverse", 1000, {"1x2": 1.0, "2x1": 0.98, "2x2": 1.0}),
        row("plain", 500, {"1x2": 0.1, "2x1": 0.2, "2x2": 0.3}),
        row("plain", 1000, {"1x2": 0.0, "2x1": 0.0, "2x2": 0.0}, status="failed"),
    ]
    assert lengths_table(rows).splitlines() == [
        "| line | training samples | 1x2 | 2x1 | 2x2 | weakest |",
        "|---|---|---|---|---|---|",
        "| plain | 500 | 10.0 | 20.0 | 30.0 | 1x2: 10.0 |",
        "| reverse | 500 | 60.0 | 95.0 | 100.0 | 1x2: 60.0 |",
        "| reverse | 1,000 | 100.0 | 98.0 | 100.0 | 2x1: 98.0 |",
    ]
    assert lengths_table([row("reverse", 500, {"3x3": 1.0})]) == ""


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux: /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return kids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the training process through /proc")
def test_an_interrupted_point_stops_the_sweep_and_stays_resumable(tmp_path):
    path = _sweep_file(tmp_path, {"train.max_iters": 400})
    out = tmp_path / "runs"
    proc = _sweep_until_a_checkpoint(path, out)
    for child in _children(proc.pid):  # Ctrl-C as the training process alone gets it
        os.kill(child, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "interrupted with 4 points not done" in stderr
    first = out / "plain_n_train-150"
    assert (first / "checkpoint").exists() and not (first / "error.txt").exists()  # not marked failed
    assert not any(
        (out / name).exists() for name in ("plain_n_train-300", "reverse_n_train-150", "reverse_n_train-300")
    )
    lines = []
    run_sweep(path, out=out, log=lines.append)  # resumes the interrupted point, then the rest
    assert lines[-1].startswith("sweep tiny: 4 of 4 points done")
    iters = [json.loads(line)["iter"] for line in (first / "metrics.jsonl").read_text().splitlines()]
    assert iters == list(range(20, 401, 20))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the training process through /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_signal_to_the_sweep_alone_stops_its_training_process(tmp_path, sig):
    # Far more steps than the test waits for: the point ends only if the stop reaches it.
    path = _sweep_file(tmp_path, {"train.max_iters": 100_000})
    out = tmp_path / "runs"
    proc = _sweep_until_a_checkpoint(path, out)
    training = _children(proc.pid)
    try:
        proc.send_signal(sig)  # the sweep's process alone, as `kill PID` or a scheduler sends it
        _, stderr = proc.communicate(timeout=120)
    finally:  # whatever is left of the sweep's process group (the test's own cleanup)
        if proc.poll() is None or any(Path(f"/proc/{pid}").exists() for pid in training):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stderr
    first = out / "plain_n_train-150"
    state = json.loads((first / "checkpoint" / "state.json").read_text())
    assert 0 < state["iter"] < 100_000 and not (first / "eval.json").exists()
    assert training and not any(Path(f"/proc/{pid}").exists() for pid in training)


def test_failing_point_is_recorded_and_the_others_go_on(tmp_path):
    # 1-digit addition has 100 problems: 150 for training fails, 30 (with 60 to test on) fits.
    path = _sweep_file(tmp_path, axes={"data.n_train": [30, 150]}, linked=[{"data.digits": 1}])
    lines, out = [], tmp_path / "runs"
    with pytest.raises(ArithlabError, match="sweep tiny: 1 of 2 points failed"):
        run_sweep(path, out=out, log=lines.append)
    assert lines[-1].startswith("sweep tiny: 1 of 2 points done, 1 failed")
    failed = [line for line in lines if "failed:" in line]
    assert len(failed) == 1 and "100 distinct problems" in failed[0]
    assert (out / "1_n_train-150" / "error.txt").exists()


def test_ray_backend_runs_the_sweep_on_a_local_ray_instance_and_gathers_the_runs(tmp_path):
    import ray  # the [cluster] extra, installed with the tests

    path = _sweep_file(tmp_path, axes={"data.n_train": [150]})
    lines = []
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        out = run_sweep(path, out=tmp_path / "runs", backend="ray", log=lines.append)
    finally:
        ray.shutdown()
    assert lines[-1].startswith("sweep tiny: 2 of 2 points done")
    for run in ("plain_n_train-150", "reverse_n_train-150"):
        assert json.loads((out / run / "eval.json").read_text())["n"] == 40
        assert (out / run / "model.safetensors").exists() and (out / run / "checkpoint" / "state.json").exists()
    assert not list(out.glob("*.incoming"))
