"""The run directory: the contract between train, eval, sweep and report (DESIGN.md).

Weights go to safetensors, never pickles; the rest is JSON, YAML and text.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from arithlab.config import Config, config_from_dict, read_yaml
from arithlab.data import Splits, read_problems, write_problems
from arithlab.errors import ArithlabError
from arithlab.model import GPT, GPTConfig
from arithlab.tokenizer import CharTokenizer

CONFIG, VOCAB, WEIGHTS, METRICS = "config.yaml", "vocab.json", "model.safetensors", "metrics.jsonl"
EVAL, PREDICTIONS, DATA, ENV, ERROR = "eval.json", "predictions.jsonl", "data.json", "env.json", "error.txt"
CHECKPOINT = "checkpoint"
FEWSHOT = "fewshot.json"  # few-shot results, one entry per variant
TEXT_HELDOUT = "text_heldout.txt"  # text-mixed runs: the held-out text perplexity is measured on
SPLIT_FILES = {"train": "train.txt", "validation": "validation.txt", "test": "test.txt"}
EXTRA_TEST = "extra_test.txt"  # only where the run has one (data.extra_test_file)


def prepare(out: Path, resume: bool, force: bool) -> None:
    """Make sure `out` may be written: never overwrite a run silently."""
    if resume:
        if not (out / CONFIG).exists():
            raise ArithlabError(f"{out}: no run to resume (no {CONFIG})")
        return
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ArithlabError(f"{out} already exists: --resume continues it, --force replaces it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def write_json(path: Path, value) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    os.replace(tmp, path)


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
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


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


def gpt_config(cfg: Config, tokenizer: CharTokenizer) -> GPTConfig:
    """The model's dimensions as the (resolved) config states them."""
    m = cfg.model
    return GPTConfig(
        vocab_size=tokenizer.vocab_size,
        block_size=m.block_size,
        n_layer=m.n_layer,
        n_head=m.n_head,
        n_embd=m.n_embd,
        dropout=m.dropout,
        bias=m.bias,
        positions=m.positions,
        place_table=m.place_table,
        digit_ids=tuple(tokenizer.encode("0123456789")),
        equals_id=tokenizer.encode("=")[0],
        newline_id=tokenizer.encode("\n")[0],
    )


def save_weights(model: GPT, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    save_model(model, str(tmp))
    os.replace(tmp, path)


def load_weights(model: GPT, path: Path) -> None:
    if not path.exists():
        raise ArithlabError(f"{path.parent}: no weights ({path.name} missing)")
    try:
        load_model(model, str(path), device=str(next(model.parameters()).device))
    except Exception as err:  # safetensors raises several types for a damaged file
        raise ArithlabError(f"{path}: unreadable weights ({type(err).__name__}: {err})") from None


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
    run: Path, model: GPT, optimizer: torch.optim.Optimizer, generator: torch.Generator, state: dict
) -> None:
    tmp, final = run / (CHECKPOINT + ".tmp"), run / CHECKPOINT
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_model(model, str(tmp / WEIGHTS))
    opt = optimizer.state_dict()
    tensors = {
        f"{pid}.{name}": value.contiguous() for pid, values in opt["state"].items() for name, value in values.items()
    }
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.batches"] = generator.get_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    write_json(tmp / "state.json", {**state, "param_groups": opt["param_groups"]})
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


def load_checkpoint(run: Path, model: GPT, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict:
    folder = run / CHECKPOINT
    state = read_json(folder / "state.json")
    load_weights(model, folder / WEIGHTS)
    tensors = load_file(str(folder / "optimizer.safetensors"))
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
    optimizer.load_state_dict({"state": opt_state, "param_groups": state.pop("param_groups")})
    return state
