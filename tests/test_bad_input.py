"""Every bad value, file or folder met through the real command line: one line on stderr
that says what and where, a non-zero exit, no traceback, and nothing written."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from arithlab.cli import main

CONFIG = {
    "data": {"digits": 2, "n_train": 300, "n_val": 20, "n_test": 40},
    "model": {"n_layer": 1, "n_embd": 32, "n_head": 2},
    "train": {"batch_size": 32, "max_iters": 20, "eval_interval": 10, "threads": 1},
}


class Place:
    """The files a case refers to, made only when its arguments name them."""

    def __init__(self, tmp: Path, trained_run: Path):
        self.tmp, self._trained = tmp, trained_run

    @property
    def config(self) -> Path:
        path = self.tmp / "c.yaml"
        path.write_text(json.dumps(CONFIG))  # JSON is YAML
        return path

    @property
    def run(self) -> Path:
        """An unfinished copy of the session's trained run: resuming it reads its checkpoint."""
        run = self.tmp / "run"
        if not run.exists():
            shutil.copytree(self._trained, run)
            (run / "eval.json").unlink()
        return run

    @property
    def readonly(self) -> Path:
        if os.geteuid() == 0:  # root writes anywhere a permission bit forbids; not into /sys
            return Path("/sys/arithlab-test")
        folder = self.tmp / "readonly"
        folder.mkdir(mode=0o555)
        return folder


def _truncated_optimizer(place: Place) -> None:
    path = place.run / "checkpoint" / "optimizer.safetensors"
    path.write_bytes(path.read_bytes()[:100])


def _missing_optimizer(place: Place) -> None:
    (place.run / "checkpoint" / "optimizer.safetensors").unlink()


def _lock_from_another_host(place: Place) -> None:
    (place.run / ".arithlab.lock").write_text(json.dumps({"pid": 4242, "host": "elsewhere"}))


def _file(place: Place) -> None:
    (place.tmp / "file.txt").write_text("mine\n")


def _user_folder(place: Place) -> None:
    (place.tmp / "mine").mkdir()
    (place.tmp / "mine" / "notes.txt").write_text("mine\n")


def _empty_config(place: Place) -> None:
    (place.tmp / "empty.yaml").write_text("# to do\n")


def _long_problems(place: Place) -> None:
    (place.tmp / "long.txt").write_text("12+34\n123456789012345678901234567890+1\n")


def _data_folder(place: Place) -> None:
    assert main(["data", "make", str(place.config), "--out", str(place.tmp / "data")]) == 0


def _sweep(axes: dict, **settings) -> callable:
    def write(place: Place) -> None:
        spec = {"base": str(place.config), "set": settings, "axes": axes}
        (place.tmp / "sweep.yaml").write_text(json.dumps(spec))

    return write


def _set(override: str, message: str) -> pytest.param:
    """A config value out of its range, through `train CONFIG --set`."""
    return pytest.param(["train", "{config}", "--out", "{tmp}/r", "--set", override], message, None, id=override)


# (arguments, the error line after "...: error: " (a trailing "..." matches any end),
# what to make first); {tmp}, {config}, {run}, {readonly} name the files of `Place`.
CASES = [
    # The cases of the issue.
    _set("data.n_train=0", "config key data.n_train: 0 must be at least 1"),
    _set("train.batch_size=0", "config key train.batch_size: 0 must be at least 1"),
    _set("train.eval_interval=0", "config key train.eval_interval: 0 must be at least 1"),
    _set("train.lr=-1", "config key train.lr: -1.0 must be a finite number above 0"),
    _set("train.lr=nan", "config key train.lr: nan must be a finite number above 0"),
    _set("train.lr=inf", "config key train.lr: inf must be a finite number above 0"),
    _set("train.threads=-1", "config key train.threads: -1 must be at least 1"),
    _set("model.dropout=1.5", "config key model.dropout: 1.5 must be at least 0 and below 1"),
    _set("model.init_std=0", "config key model.init_std: 0.0 must be a finite number above 0"),
    _set("train.max_iters=-5", "config key train.max_iters: -5 must be at least 1"),
    _set("train.max_minutes=-1", "config key train.max_minutes: -1.0 must be a finite number, at least 0"),
    _set("train.target_accuracy=2", "config key train.target_accuracy: 2.0 must be from 0 to 1"),
    pytest.param(
        ["train", "{config}", "--out", "{tmp}/r", "--set", "train.position_gaps=2", "--set", "train.objective=packed"],
        "config key train.position_gaps: 2 needs model.positions: learned, train.objective: answer and "
        "train.loss_on: answer (not learned, packed, answer): the gaps go between the prompt's numbers and "
        "before the answer of one sample a row",
        None,
        id="position-gaps-packed",
    ),
    pytest.param(
        ["train", "{config}", "--out", "{tmp}/file.txt"], "{tmp}/file.txt is a file, not a folder", _file, id="out-file"
    ),
    pytest.param(
        ["train", "{config}", "--out", "{readonly}/run"],
        "{readonly}/run: cannot write there (...",
        None,
        id="read-only",
    ),
    pytest.param(
        ["train", "--resume", "{run}"],
        "{run}/checkpoint/optimizer.safetensors: unreadable optimizer state (...",
        _truncated_optimizer,
        id="truncated-optimizer",
    ),
    pytest.param(
        ["train", "--resume", "{run}"],
        "{run}/checkpoint: no optimizer state (optimizer.safetensors missing)",
        _missing_optimizer,
        id="missing-optimizer",
    ),
    pytest.param(
        ["train", "{tmp}/empty.yaml", "--out", "{tmp}/r"],
        "{tmp}/empty.yaml: empty; expected a mapping of config sections",
        _empty_config,
        id="empty-config",
    ),
    pytest.param(
        ["eval", "{run}", "--problems", "{tmp}/long.txt", "--strict"],
        "1 of 2 problems (e.g. 123456789012345678901234567890+1) are longer than the model can read and write "
        "(29 tokens)",
        _long_problems,
        id="too-long-strict",
    ),
    pytest.param(
        ["sweep", "{tmp}/sweep.yaml", "--out", "{tmp}/s"],
        "sweep sweep: 1 of 1 points failed (each says why in its error.txt)",
        _sweep({}, **{"data.digits": 1, "data.n_train": 150}),
        id="sweep-point-failed",
    ),
    pytest.param(
        ["sweep", "{tmp}/sweep.yaml", "--dry-run"],
        "{tmp}/sweep.yaml: point {'data.format': 'plian'}: config key data.format: unknown format 'plian'...",
        _sweep({"data.format": ["plain", "plian"]}),
        id="sweep-axis-typo",
    ),
    pytest.param(
        ["train", "{config}", "--out", "{tmp}/mine", "--force"],
        "{tmp}/mine is not empty and was not made by arithlab; it is left as it is: choose another folder",
        _user_folder,
        id="force-on-a-user-folder",
    ),
    pytest.param(
        ["train", "{config}", "--out", "."],
        ". is the current folder, one above it or the home folder; arithlab writes only into a folder of its own: "
        "choose another",
        None,
        id="out-dot",
    ),
    # More of our own.
    _set("data.n_val=0", "config key data.n_val: 0 must be at least 1"),
    _set("model.n_layer=0", "config key model.n_layer: 0 must be at least 1"),
    _set("train.beta2=1", "config key train.beta2: 1.0 must be at least 0 and below 1"),
    _set("train.weight_decay=-0.1", "config key train.weight_decay: -0.1 must be a finite number, at least 0"),
    _set("train.grad_clip=inf", "config key train.grad_clip: inf must be a finite number, at least 0"),
    _set("train.warmup_iters=-1", "config key train.warmup_iters: -1 must be at least 0"),
    _set("eval.top_k=0", "config key eval.top_k: 0 must be at least 1"),
    _set("eval.temperature=0", "config key eval.temperature: 0.0 must be a finite number above 0"),
    _set("data.text_heldout=1", "config key data.text_heldout: 1.0 must be between 0 and 1"),
    _set("data.exclude=[-5]", "config key data.exclude: [-5] must be numbers of at least 0"),
    _set("data.seed=-1", "config key data.seed: -1 must be at least 0"),
    _set("train.balance_lengths=1.5", "config key train.balance_lengths: 1.5 must be from 0 to 1"),
    _set("model.lora_alpha=0", "config key model.lora_alpha: 0.0 must be a finite number above 0"),
    _set(
        "data.format=plian",
        "config key data.format: unknown format 'plian' (allowed: plain, reverse, reverse_all, reverse_pad, "
        "partial_products, partial_carries, simplified, simplified_random_a, simplified_random_c, "
        "simplified_random_ac, detailed)",
    ),
    _set("data.operation=div", "config key data.operation: unknown operation 'div'..."),
    pytest.param(
        ["train", "{config}", "--out", "{tmp}/file.txt/run"],
        "{tmp}/file.txt/run: cannot write there (Not a directory)",
        _file,
        id="out-inside-a-file",
    ),
    pytest.param(
        ["train", "{config}", "--out", ".."],
        ".. is the current folder, one above it or the home folder; arithlab writes only into a folder of its own: "
        "choose another",
        None,
        id="out-dotdot",
    ),
    pytest.param(
        ["train", "--resume", "{run}", "--set", "data.digits=4"],
        "--resume --set data.digits: it changes what is trained; a resumed run may change only train.threads, "
        "train.device, train.compile, train.max_minutes, train.log_to, train.log_group, eval.batch_size",
        None,
        id="resume-changes-the-data",
    ),
    pytest.param(
        ["train", "--resume", "{run}", "--set", "train.threads=0"],
        "config key train.threads: 0 must be at least 1",
        None,
        id="resume-threads-0",
    ),
    pytest.param(
        ["train", "--resume", "{tmp}"], "{tmp}: no run to resume (no config.yaml)", None, id="resume-not-a-run"
    ),
    pytest.param(
        ["train", "--resume", "{run}"],
        "{run} is locked by pid 4242 on elsewhere, which this machine cannot check; if that process is gone, "
        "delete {run}/.arithlab.lock",
        _lock_from_another_host,
        id="lock-of-another-host",
    ),
    pytest.param(
        ["export", "{run}", "--hf", "{tmp}/mine", "--force"],
        "{tmp}/mine is not empty and was not made by arithlab; it is left as it is: choose another folder",
        _user_folder,
        id="export-into-a-user-folder",
    ),
    pytest.param(
        ["export", "{run}", "--hf", "{run}", "--force"],
        "{run} is an arithlab folder of another kind (run, not export); it is left as it is: choose another",
        None,
        id="export-over-a-run",
    ),
    pytest.param(
        ["data", "make", "{config}", "--out", "{tmp}/mine"],
        "{tmp}/mine is not empty and was not made by arithlab; it is left as it is: choose another folder",
        _user_folder,
        id="data-make-into-a-user-folder",
    ),
    pytest.param(
        ["data", "make", "{config}", "--out", "{tmp}/data"],
        "{tmp}/data already exists: --force replaces it",
        _data_folder,
        id="data-make-again",
    ),
    pytest.param(
        ["ask", "{run}", "123456789012345678901234567890+1"],
        "123456789012345678901234567890+1 is longer than the model can read and write (29 tokens)",
        None,
        id="ask-too-long",
    ),
    pytest.param(
        ["eval", "{run}", "--shots", "-1"], "config key eval.shots: -1 must be at least 0", None, id="shots-negative"
    ),
    pytest.param(
        ["sweep", "{tmp}/sweep.yaml", "--jobs", "two"],
        "argument --jobs: invalid int value: 'two' (see arithlab sweep --help)",
        None,
        id="jobs-not-a-number",
    ),
]


@pytest.mark.parametrize(("args", "message", "setup"), CASES)
def test_bad_input_is_a_one_line_error(capsys, tmp_path, trained_run, args, message, setup):
    place = Place(tmp_path, trained_run)
    if setup:
        setup(place)
    names = {name: getattr(place, name) for name in ("config", "run", "readonly") if f"{{{name}}}" in str(args)}
    fill = {"tmp": tmp_path, **names}
    before = _listing(tmp_path)
    try:
        code = main([arg.format(**fill) for arg in args])
    except SystemExit as exit_info:  # a usage mistake, which argparse reports
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    line = err.strip().split(": error: ", 1)[1]
    expected = message.replace("{tmp}", str(tmp_path)).replace("{run}", str(fill.get("run")))
    expected = expected.replace("{readonly}", str(fill.get("readonly")))
    if expected.endswith("..."):
        assert line.startswith(expected[:-3]), line
    else:
        assert line == expected
    if "sweep" not in args:  # a sweep writes its folder before its points fail
        assert _listing(tmp_path) == before, "a refused command wrote or deleted something"


def _listing(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def test_a_usage_mistake_prints_one_line_not_the_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--resume"])
    assert exit_info.value.code == 2
    expected = "arithlab train: error: argument --resume: expected one argument (see arithlab train --help)\n"
    assert capsys.readouterr().err == expected


def test_a_stale_lock_is_taken_over(capsys, tmp_path, trained_run):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(gone.stdout)  # a process of this host that has ended
    (run / ".arithlab.lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert f"took over the lock left by pid {pid}, which no longer runs" in capsys.readouterr().err
    assert not (run / ".arithlab.lock").exists()


def test_a_reader_that_leaves_early_ends_the_command_without_a_traceback():
    # `arithlab sweep X --dry-run | head -1`: the pipe is closed before arithlab writes.
    read_end, write_end = os.pipe()
    os.close(read_end)
    sweep = Path(__file__).parents[1] / "configs" / "sweeps" / "sample_efficiency_cpu.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "arithlab", "sweep", str(sweep), "--dry-run"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    os.close(write_end)
    assert done.returncode == 1 and done.stderr == ""
