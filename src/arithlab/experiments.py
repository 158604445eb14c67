"""Sweeps: a grid of ordinary runs, each in its own run directory under the sweep's folder.

A sweep file names a base config, common overrides, axes (every combination is a point)
and linked settings that vary together (each entry is one value of one more axis):

    base: ../addition_reverse.yaml      # relative to the sweep file
    set: {train.max_iters: 2000}
    axes:
      data.n_train: [250, 1000, 4000]
      train.seed: [0, 1]
    linked:
      - {data.format: plain, train.batch_size: 256}
      - {data.format: detailed, train.batch_size: 16}

Running a sweep again skips finished points and resumes interrupted ones, so a crash,
Ctrl-C or SIGTERM costs at most the work since each run's last checkpoint; a failing point is
recorded (its `error.txt`) and the others go on. Each point runs as its own process. A
point whose run was trained with other settings than the sweep file now gives (the file
was edited) stops the sweep before anything runs: skipping it would mix two recipes in one
table, and replacing it would throw away a run. `only` (shell patterns on the point
names, `--only 'reverse_*'`) runs part of a sweep: one machine a row, or the points that
matter first.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import re
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from arithlab import rundir
from arithlab.config import Config, config_from_dict, merge, put, read_config_file, read_yaml, training_differences
from arithlab.devices import default_threads
from arithlab.errors import ArithlabError

SWEEP_FILE = "sweep.json"
SWEEP_KEYS = {"name", "base", "set", "axes", "linked"}


@dataclass
class Point:
    name: str  # the run directory's name
    settings: dict  # the dotted keys this point sets
    config: Config


def _nested(path: Path, settings: dict) -> dict:
    """{"train.seed": 1} as the nested {"train": {"seed": 1}}."""
    nested: dict = {}
    for key, value in settings.items():
        try:
            put(nested, key, value)
        except ValueError as err:
            raise ArithlabError(f"{path}: {key}: {err} is not a section") from None
    return nested


def _point_name(group: dict, axes: dict) -> str:
    """`reverse_n_train-250_seed-0`: a linked group by its first value, then each axis."""
    parts = [str(next(iter(group.values())))] if group else []
    parts += [f"{key.split('.')[-1]}-{value}" for key, value in axes.items()]
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", "_".join(parts)) or "base"


def is_sweep(path: Path) -> bool:
    """Whether a YAML file is a sweep (base, set, axes, linked) rather than a config. A
    file of only `name` and `base` is a config starting from its base (config files take
    `base:` too)."""
    spec = read_yaml(path)
    return bool(spec) and set(spec) <= SWEEP_KEYS and bool(set(spec) & {"set", "axes", "linked"})


def load_sweep(path: Path) -> tuple[str, list[Point]]:
    """The sweep's name and its points, each a checked config."""
    spec = read_yaml(path)
    unknown = set(spec) - SWEEP_KEYS
    if unknown:
        raise ArithlabError(f"{path}: unknown sweep keys {sorted(unknown)} (allowed: {', '.join(sorted(SWEEP_KEYS))})")
    base = read_config_file(path.parent / spec["base"]) if spec.get("base") else {}
    base = merge(base, _nested(path, spec.get("set") or {}))
    axes = spec.get("axes") or {}
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ArithlabError(f"{path}: axis {key} needs a non-empty list of values")
    linked = spec.get("linked") or [{}]
    if not isinstance(linked, list) or not all(isinstance(group, dict) for group in linked):
        raise ArithlabError(f"{path}: 'linked' must be a list of mappings of settings that vary together")
    name = spec.get("name") or path.stem
    points = []
    for group in linked:
        for combo in itertools.product(*axes.values()):
            values = dict(zip(axes, combo))
            settings = {**group, **values}
            nested = _nested(path, settings)
            try:
                config = config_from_dict(merge(base, nested))
            except ArithlabError as err:
                raise ArithlabError(f"{path}: point {settings}: {err}") from None
            config.train.log_group = config.train.log_group or name  # each point a tracker run in the sweep's group
            points.append(Point(_point_name(group, values), settings, config))
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        raise ArithlabError(f"{path}: two points get the same name; make the first value of each linked group distinct")
    return name, points


def select(points: list[Point], only: list[str] | None, path: Path) -> list[Point]:
    """The points whose names match one of the shell patterns `only` (all when None), in
    the sweep's order; an ArithlabError for a pattern that matches none."""
    if not only:
        return points
    for pattern in only:
        if not any(fnmatch.fnmatchcase(p.name, pattern) for p in points):
            raise ArithlabError(f"--only {pattern}: matches no point of {path} (their names: arithlab sweep --dry-run)")
    return [p for p in points if any(fnmatch.fnmatchcase(p.name, pattern) for pattern in only)]


def status(run: Path) -> str:
    if (run / rundir.EVAL).exists():
        return "done"
    if (run / rundir.ERROR).exists():
        return "failed"
    if rundir.has_checkpoint(run):
        return "interrupted"
    return "new" if not run.exists() else "started"


def check_unchanged(points: list[Point], folder: Path) -> None:
    """An ArithlabError naming the first point whose run in `folder` was trained with other
    settings than the point now has, and what differs."""
    for point in points:
        run = folder / point.name
        if status(run) in ("done", "interrupted") and (run / rundir.CONFIG).exists():
            changed = training_differences(rundir.load_run_config(run), point.config)
            if changed:
                raise ArithlabError(
                    f"{run} was trained with other settings than the sweep file gives now "
                    f"({'; '.join(changed)}): move that run away, or give the sweep another --out"
                )


# How a training process that Ctrl-C stopped exits: with status 130 (`arithlab` returns it
# after saving the checkpoint), or killed by the SIGINT itself. The point is not failed.
INTERRUPTED = (-signal.SIGINT, 128 + signal.SIGINT)


class _TrainingProcesses:
    """The points' training processes: started until the sweep stops, and each asked to
    stop (SIGINT: it saves its checkpoint) when the sweep itself is stopped, so that a
    SIGINT or SIGTERM sent to the sweep alone, by a script or a scheduler, stops them too."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self.stopped = False

    def run(self, command: list[str]) -> subprocess.CompletedProcess | None:
        """`command` run to its end; None if the sweep stopped before it could start."""
        with self._lock:
            if self.stopped:
                return None
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self._running.add(proc)
        try:
            stdout, stderr = proc.communicate()
        finally:
            with self._lock:
                self._running.discard(proc)
        return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)

    def start_no_more(self) -> None:
        with self._lock:
            self.stopped = True

    def interrupt(self) -> None:
        """No more starts, and SIGINT to each running process (a second SIGINT, for one
        that Ctrl-C in a terminal reached already, changes nothing)."""
        with self._lock:
            self.stopped = True
            for proc in self._running:
                proc.send_signal(signal.SIGINT)


def _run_point(point: Point, folder: Path, threads: int, processes: _TrainingProcesses) -> tuple[str, str]:
    """Train one point in its own process; (name, outcome). Once the sweep stops (Ctrl-C),
    no point starts, and the one interrupted keeps its checkpoint for the next sweep."""
    run = folder / point.name
    state = status(run)
    if state == "done":
        return point.name, "skipped (done)"
    if processes.stopped:
        return point.name, "not started (interrupted)"
    config_path = folder / "configs" / f"{point.name}.yaml"
    point.config.train.threads = point.config.train.threads or threads
    point.config.save(config_path)
    command = [sys.executable, "-m", "arithlab", "train", "--quiet"]
    if state == "interrupted":
        command += ["--resume", str(run)]
    else:  # new, failed, or started without a checkpoint: from the beginning
        command += [str(config_path), "--out", str(run), "--force"]
    done = processes.run(command)
    if done is None:
        return point.name, "not started (interrupted)"
    if done.returncode in INTERRUPTED:
        processes.start_no_more()
        return point.name, "interrupted"
    if done.returncode:
        message = (done.stderr.strip().splitlines() or ["no output"])[-1]
        rundir.record_failure(run, done.stderr)
        return point.name, f"failed: {message}"
    return point.name, "done"


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does, so that the sweep stops its
    training processes before it leaves (main thread only: where handlers can be set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_sweep(
    path: Path,
    jobs: int = 1,
    out: Path | None = None,
    backend: str = "local",
    address: str | None = None,
    log=print,
    only: list[str] | None = None,
) -> Path:
    """Run every point of the sweep at `path` (those `only` selects); returns the sweep's
    folder, or raises an ArithlabError once the others are done if any point failed."""
    name, every = load_sweep(path)
    points = select(every, only, path)
    folder = Path(out or Path("runs") / name)
    check_unchanged(points, folder)
    (folder / "configs").mkdir(parents=True, exist_ok=True)
    rundir.write_json(
        folder / SWEEP_FILE,
        {
            "name": name,
            "sweep_file": str(path),
            "axes": sorted({key for p in every for key in p.settings}),
            "points": [{"name": p.name, "settings": p.settings} for p in every],
        },
    )
    if backend == "ray":
        from arithlab.ray_backend import run_on_ray

        outcomes = run_on_ray(points, folder, address, status)
    else:
        threads, processes = default_threads(jobs), _TrainingProcesses()
        with _sigterm_as_interrupt(), ThreadPoolExecutor(max_workers=jobs) as pool:
            try:
                outcomes = list(pool.map(lambda p: _run_point(p, folder, threads, processes), points))
            except KeyboardInterrupt:  # the running points save their checkpoints, then the sweep leaves
                processes.interrupt()
                raise
    failed = unfinished = 0
    for point_name, outcome in outcomes:
        log(f"{point_name}: {outcome}")
        failed += outcome.startswith("failed")
        unfinished += outcome.startswith(("interrupted", "not started"))
    done = len(points) - failed - unfinished
    log(f"sweep {name}: {done} of {len(points)} points done, {failed} failed; runs in {folder}")
    if unfinished:
        raise ArithlabError(f"sweep {name} interrupted with {unfinished} points not done; run it again to resume")
    if failed:
        raise ArithlabError(f"sweep {name}: {failed} of {len(points)} points failed (each says why in its error.txt)")
    return folder


def describe_points(path: Path, only: list[str] | None = None) -> list[str]:
    """One line per point (those `only` selects), for --dry-run."""
    _, points = load_sweep(path)
    return [f"{p.name}: {json.dumps(p.settings)}" for p in select(points, only, path)]
