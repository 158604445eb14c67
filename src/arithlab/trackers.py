"""Experiment trackers: each metrics.jsonl line also sent to TensorBoard and/or Weights &
Biases (`train.log_to`), at the same iteration. metrics.jsonl stays the record; a tracker
only shows it.

A tracker run is the run directory's: named after its folder, holding the resolved config,
grouped under the sweep's name for a sweep's points (`train.log_group`), and continued by
`--resume`: TensorBoard writes to the same folder and drops what it had logged past the
checkpoint the run resumes from; W&B takes up the run whose id the run directory keeps.

Adding a tracker is one `Tracker` subclass and its entry in `TRACKERS`.
"""

from __future__ import annotations

import importlib
import os
import secrets
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

from arithlab.errors import ArithlabError
from arithlab.folders import write_atomic

TENSORBOARD_DIR = "tensorboard"  # in the run directory: TensorBoard's event files
WANDB_DIR, WANDB_ID = "wandb", "wandb_id.txt"  # W&B's own files, and the id of the run's W&B run


class Tracker:
    """Base: opened for one run, given each metrics line, closed at the end."""

    name = ""
    module = ""  # the package it needs, installed by the extra of its name

    def __init__(self, run: Path, config: dict, group: str | None, resumed_at: int | None):
        """`resumed_at`: the iteration a resumed run continues from (None: a new run)."""
        raise NotImplementedError

    def log(self, row: dict) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _scalars(row: dict) -> dict:
    return {key: value for key, value in row.items() if key != "iter" and isinstance(value, (int, float))}


class TensorBoard(Tracker):
    name, module = "tensorboard", "tensorboard"

    def __init__(self, run, config, group, resumed_at):
        from torch.utils.tensorboard import SummaryWriter

        folder = run / TENSORBOARD_DIR
        new = not folder.exists()
        purge = None
        if resumed_at is not None:
            # Events logged after the checkpoint (metrics.jsonl drops those lines too) are purged.
            purge = resumed_at + 1
            _after_earlier_files(folder)
        self.writer = SummaryWriter(str(folder), purge_step=purge)
        if new:
            self.writer.add_text("config", f"```\n{yaml.safe_dump(config, sort_keys=False)}```", 0)

    def log(self, row):
        for key, value in _scalars(row).items():
            self.writer.add_scalar(key, value, row["iter"])
        self.writer.flush()

    def close(self):
        self.writer.close()


def _after_earlier_files(folder: Path) -> None:
    """Wait, if need be, for the second after the newest event file's: TensorBoard reads a
    folder's event files in name order, which begins with the second each was opened, and a
    file read before an earlier one would purge none of that one's events."""
    opened = [int(path.name.split(".")[3]) for path in folder.glob("events.out.tfevents.*")]
    while opened and time.time() < max(opened) + 1:
        time.sleep(0.05)


class WandB(Tracker):
    name, module = "wandb", "wandb"

    def __init__(self, run, config, group, resumed_at):
        import wandb

        id_file = run / WANDB_ID
        run_id = id_file.read_text().strip() if id_file.exists() else secrets.token_hex(8)
        write_atomic(id_file, run_id + "\n")
        (run / WANDB_DIR).mkdir(exist_ok=True)
        try:
            self.run = wandb.init(
                project=os.environ.get("WANDB_PROJECT", "arithlab"),
                name=run.name,
                group=group,
                config=config,
                dir=str(run),
                id=run_id,
                resume="allow",
            )
        except wandb.errors.Error as err:  # not logged in, no network: the user's to fix
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ArithlabError(
                f"wandb could not start ({first_line}); WANDB_MODE=offline logs without an account"
            ) from None

    def log(self, row):
        self.run.log(_scalars(row), step=row["iter"])

    def close(self):
        self.run.finish()


TRACKERS: dict[str, type[Tracker]] = {t.name: t for t in (TensorBoard, WandB)}


def tracker(name: str) -> type[Tracker]:
    if name not in TRACKERS:
        raise ArithlabError(f"unknown tracker {name!r} (trackers: {', '.join(TRACKERS)})")
    return TRACKERS[name]


def check_installed(names: list[str]) -> None:
    """An ArithlabError naming the extra to install where a tracker's package is missing
    (checked before training, not with the config: a run logged to W&B reads anywhere)."""
    for name in names:
        try:
            importlib.import_module(tracker(name).module)
        except ImportError:
            raise ArithlabError(f"train.log_to {name} needs {name}: pip install 'arithlab[{name}]'") from None


@contextmanager
def tracking(names: list[str], run: Path, config: dict, group: str | None, resumed_at: int | None):
    """For the block, `log(row)`, which sends a metrics line to every tracker of `names`."""
    check_installed(names)
    opened: list[Tracker] = []
    try:
        for name in names:
            opened.append(tracker(name)(run, config, group, resumed_at))

        def log(row: dict) -> None:
            for each in opened:
                each.log(row)

        yield log
    finally:
        for each in opened:
            each.close()
