"""Sweeps on a Ray cluster: each point is a Ray task that trains in a scratch folder on
whichever node runs it and sends the finished run directory's files back; the machine
that started the sweep writes them into the sweep folder. No storage shared by the nodes
is needed. An interrupted point travels with its checkpoint and resumes on the worker.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from arithlab import folders, rundir
from arithlab.errors import ArithlabError


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _write(files: dict[str, bytes], folder: Path) -> None:
    """Replace run `folder` (never a folder that is not a run) with these files, never
    leaving half a run behind."""
    folders.check_target(folder, "run", force=True)
    staging = folder.with_name(folder.name + ".incoming")
    shutil.rmtree(staging, ignore_errors=True)
    for relative, data in files.items():
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    folders.replace_folder(staging, folder)


def _train_remote(config: dict, name: str, resume_files: dict[str, bytes] | None):
    """Runs on a worker: (name, outcome, the run directory's files)."""
    import traceback

    import ray

    from arithlab.config import config_from_dict
    from arithlab.trainer import train

    if config["train"]["threads"] is None:  # the CPUs Ray gave this task, not the node's all
        config["train"]["threads"] = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
    with tempfile.TemporaryDirectory() as scratch:
        run = Path(scratch) / name
        if resume_files:
            _write(resume_files, run)
        try:
            train(config_from_dict(config), run, resume=bool(resume_files), force=True, progress=False)
        except Exception as err:  # reported back as this point's failure; the sweep goes on
            run.mkdir(parents=True, exist_ok=True)
            (run / rundir.ERROR).write_text(traceback.format_exc())
            return name, f"failed: {type(err).__name__}: {err}", _files(run)
        return name, "done", _files(run)


def run_on_ray(points, folder: Path, address: str | None, status) -> list[tuple[str, str]]:
    try:
        import ray
    except ImportError:
        raise ArithlabError("--backend ray needs Ray: pip install 'arithlab[cluster]'") from None
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    task = ray.remote(_train_remote)
    outcomes, pending = [], {}
    for point in points:
        run = folder / point.name
        state = status(run)
        if state == "done":
            outcomes.append((point.name, "skipped (done)"))
            continue
        resume = _files(run) if state == "interrupted" else None
        pending[task.remote(point.config.to_dict(), point.name, resume)] = point.name
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        name, outcome, files = ray.get(ready[0])
        del pending[ready[0]]
        _write(files, folder / name)
        outcomes.append((name, outcome))
    return outcomes
