"""The run directory: the contract between train, eval, sweep and report (README.md:
The run directory).

Weights go to safetensors, never pickles; the rest is JSON, YAML and text.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
import traceback
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file, load_model, save_file, save_model

from arithlab import folders
from arithlab.config import Config, config_from_dict, read_yaml
from arithlab.data import Splits, read_problems, write_problems
from arithlab.errors import ArithlabError

CONFIG, VOCAB, WEIGHTS, METRICS = "config.yaml", "vocab.json", "model.safetensors", "metrics.jsonl"
EVAL, PREDICTIONS, DATA, ENV, ERROR = "eval.json", "predictions.jsonl", "data.json", "env.json", "error.txt"
CHECKPOINT = "checkpoint"
OPTIMIZER, STATE = "optimizer.safetensors", "state.json"  # in the checkpoint, beside its weights
BEST = "best.safetensors"  # in the checkpoint: the best validation's weights (train.keep_best)
FEWSHOT = "fewshot.json"  # few-shot results, one entry per variant
TEXT_HELDOUT = "text_heldout.txt"  # text-mixed runs: the held-out text perplexity is measured on
SPLIT_FILES = {"train": "train.txt", "validation": "validation.txt", "test": "test.txt"}
EXTRA_TEST = "extra_test.txt"  # only where the run has one (data.extra_test_file)


RUN_EXISTS = "--resume continues it, --force replaces it"


@contextmanager
def writing(run: Path, resume: bool, force: bool):
    """Hold run directory `run` for writing for the block: its lock, and for a new run the
    folder made (with `force`, a run of ours emptied first), for a resumed one its last
    checkpoint made whole. A run is never overwritten silently, nor a folder that is not a
    run touched. A crash in the block leaves its traceback in error.txt."""
    if resume:
        check_resumable(run)
    else:
        folders.check_target(run, "run", force, RUN_EXISTS)
    folders.mark(run, "run")
    with folders.lock(run):
        if resume:
            folders.recover_folder(run / CHECKPOINT)
        else:  # again, now under the lock: another writer may have finished a run here meanwhile
            folders.check_target(run, "run", force, RUN_EXISTS)
            folders.clear(run)
        try:
            yield
        except (ArithlabError, KeyboardInterrupt):
            raise
        except Exception:
            folders.write_atomic(run / ERROR, traceback.format_exc())
            raise


def check_resumable(run: Path) -> None:
    folders.check_place(run)
    if not (run / CONFIG).exists():
        again = "; it stopped before training began: train it again (--force)" if folders.kind_of(run) else ""
        raise ArithlabError(f"{run}: no run to resume (no {CONFIG}){again}")


def record_failure(run: Path, text: str) -> None:
    """error.txt for a run that failed without writing one (a sweep point whose training
    never started); not while another process writes the run, nor once it is done, nor in
    a folder that is not a run."""
    if folders.contents(run) and folders.kind_of(run) != "run":
        return
    folders.mark(run, "run")
    try:
        with folders.lock(run):
            if not (run / EVAL).exists() and not (run / ERROR).exists():
                folders.write_atomic(run / ERROR, text)
    except ArithlabError:
        pass  # another process is writing the run: the outcome is its own


def write_json(path: Path, value) -> None:
    folders.write_atomic(path, json.dumps(value, indent=1) + "\n")


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except OSError:
        raise ArithlabError(f"{path}: missing") from None
    except ValueError as err:
        raise ArithlabError(f"{path}: corrupted JSON ({err})") from None


def add_fewshot(run: Path, result: dict) -> None:
    """Put a few-shot result into fewshot.json under its variant, keeping the others."""
    path = Path(run) / FEWSHOT
    results = read_json(path) if path.exists() else {}
    results[result["variant"]] = result
    write_json(path, results)


def write_jsonl(path: Path, rows) -> None:
    folders.write_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def log_metrics(run: Path, row: dict) -> None:
    folders.append_atomic(run / METRICS, json.dumps(row))


def trim_metrics(run: Path, last_iter: int) -> None:
    """Keep metrics.jsonl's rows up to iteration `last_iter`: a run resumed from the
    checkpoint there logs the later ones again."""
    path = run / METRICS
    if path.exists():
        rows = [line for line in path.read_text().splitlines() if _iter_of(line) <= last_iter]
        folders.write_atomic(path, "".join(f"{row}\n" for row in rows))


def _iter_of(line: str) -> float:
    try:
        return json.loads(line)["iter"]
    except (ValueError, KeyError, TypeError):
        return math.inf  # not a whole row: dropped


def load_run_config(run: Path) -> Config:
    if not Path(run).is_dir():
        raise ArithlabError(f"{run}: not a run directory")
    return config_from_dict(read_yaml(Path(run) / CONFIG))


def write_splits(run: Path, splits: Splits) -> None:
    for split, name in SPLIT_FILES.items():
        write_problems(run / name, getattr(splits, split))
    if splits.extra_test:
        write_problems(run / EXTRA_TEST, splits.extra_test)


def read_splits(run: Path) -> Splits:
    splits = Splits(**{split: read_problems(run / name) for split, name in SPLIT_FILES.items()})
    if (run / EXTRA_TEST).exists():
        splits.extra_test = read_problems(run / EXTRA_TEST)
    return splits


def save_weights(model: nn.Module, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    save_model(model, str(tmp))
    os.replace(tmp, path)


def load_weights(model: nn.Module, path: Path) -> None:
    device = str(next(model.parameters()).device)
    _read_safetensors(path, "weights", lambda name: load_model(model, name, device=device))


def _read_safetensors(path: Path, what: str, read):
    """`read(path)`, or an ArithlabError saying that `what` is missing or damaged."""
    if not path.exists():
        raise ArithlabError(f"{path.parent}: no {what} ({path.name} missing)")
    try:
        return read(str(path))
    except Exception as err:  # safetensors raises several types for a damaged file
        raise ArithlabError(f"{path}: unreadable {what} ({type(err).__name__}: {err})") from None


def environment(device: str) -> dict:
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    from arithlab import __version__

    extras = {}
    if "transformers" in sys.modules:  # a run with a Hugging Face model: its libraries too
        for name in ("transformers", "tokenizers", "peft"):
            try:
                extras[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                pass
    return {
        "arithlab": __version__,
        "torch": torch.__version__,
        **extras,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "cuda": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        "threads": torch.get_num_threads(),
        "git_commit": commit,
    }


# --- checkpoints: everything a resumed run needs to continue exactly -----------------


def save_checkpoint(
    run: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    state: dict,
    best: dict[str, torch.Tensor] | None = None,
) -> None:
    """The whole training state in one folder, swapped in at once; `best` (a state dict)
    is kept beside the weights."""
    tmp = run / (CHECKPOINT + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_model(model, str(tmp / WEIGHTS))
    if best is not None:
        save_file(best, str(tmp / BEST))
    opt = optimizer.state_dict()
    tensors = {
        f"{pid}.{name}": value.contiguous() for pid, values in opt["state"].items() for name, value in values.items()
    }
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.batches"] = generator.get_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    save_file(tensors, str(tmp / OPTIMIZER))
    write_json(tmp / STATE, {**state, "param_groups": opt["param_groups"]})
    folders.replace_folder(tmp, run / CHECKPOINT)


def has_checkpoint(run: Path) -> bool:
    """Whether `run` has a checkpoint (perhaps beside it, after a kill in mid-swap)."""
    return (run / CHECKPOINT).exists() or (run / (CHECKPOINT + folders.OLD)).exists()


def load_checkpoint(run: Path, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict:
    folder = run / CHECKPOINT
    state = read_json(folder / STATE)
    load_weights(model, folder / WEIGHTS)
    tensors = _read_safetensors(folder / OPTIMIZER, "optimizer state", load_file)
    try:
        _restore(tensors, state.pop("param_groups"), model, optimizer, generator)
    except (KeyError, ValueError, RuntimeError) as err:
        raise ArithlabError(f"{folder}: checkpoint does not fit this run ({type(err).__name__}: {err})") from None
    return state


def load_best(run: Path) -> dict[str, torch.Tensor] | None:
    """The best validation's weights the checkpoint keeps (train.keep_best), or None."""
    path = run / CHECKPOINT / BEST
    return _read_safetensors(path, "best weights", load_file) if path.exists() else None


def _restore(tensors: dict, param_groups: list, model: nn.Module, optimizer, generator: torch.Generator) -> None:
    """The random states and the optimizer's state a checkpoint holds, put back."""
    torch.set_rng_state(tensors.pop("rng.torch"))
    generator.set_state(tensors.pop("rng.batches"))
    cuda_state = tensors.pop("rng.cuda", None)
    if cuda_state is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda_state)
    opt_state: dict = {}
    device = next(model.parameters()).device
    for key, value in tensors.items():
        pid, name = key.split(".", 1)
        # AdamW keeps `step` on the CPU unless it is fused or capturable.
        opt_state.setdefault(int(pid), {})[name] = value if name == "step" else value.to(device)
    optimizer.load_state_dict({"state": opt_state, "param_groups": param_groups})
