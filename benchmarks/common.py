"""Shared by the speed benchmarks: time training steps of one model on 3-digit addition,
exactly as the trainer takes them."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path

import torch

from arithlab.batches import IGNORE, AnswerBatches, StreamBatches
from arithlab.config import PRESETS, load_config
from arithlab.data import build_splits, training_stream
from arithlab.devices import autocast_for, pick_device
from arithlab.formats import get_format
from arithlab.model import GPT, GPTConfig
from arithlab.tokenizer import CharTokenizer
from arithlab.trainer import train_step

STREAM_CONTEXT = 256
RESULTS = Path(__file__).parent / "results"


def save(name: str, result: dict, quick: bool = False) -> None:
    """benchmarks/results/NAME.json, with the machine it ran on; a --quick run's results go
    to NAME_quick.json, so that they never replace the full-size ones."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}_quick.json" if quick else RESULTS / f"{name}.json"
    path.write_text(json.dumps({**result, "quick": quick, "machine": machine()}, indent=1) + "\n")


def machine() -> dict:
    device = pick_device("auto")
    return {
        "device": torch.cuda.get_device_name() if device == "cuda" else device,
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "torch": torch.__version__,
    }


def time_steps(preset: str, objective: str, batch_size: int, steps: int, compile: bool = False) -> dict:
    """Training tokens/s, samples/s and peak memory of `steps` steps (after warm-up)."""
    device = pick_device("auto")
    cfg = load_config(None, ["data.n_val=1", "data.n_test=1"])
    problems = build_splits(cfg.data).train
    fmt, tokenizer = get_format("reverse"), CharTokenizer()
    if objective == "answer":
        batches = AnswerBatches(problems, fmt, tokenizer)
        block = batches.longest
    else:
        batches = StreamBatches(training_stream(cfg.data, problems), tokenizer, STREAM_CONTEXT)
        block = STREAM_CONTEXT
    mean_sample = sum(len("\n" + fmt.render(p)) for p in problems) / len(problems)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=block, **PRESETS[preset])).to(device)
    optimizer = model.optimizer(1e-3, 0.1, (0.9, 0.99), fused=device == "cuda")
    wrapped = torch.compile(model, dynamic=objective == "answer") if compile else model
    generator = torch.Generator().manual_seed(0)
    autocast = autocast_for(device)

    def one() -> int:
        x, y, real = batches.sample(batch_size, generator)
        train_step(wrapped, model, optimizer, x.to(device), y.to(device), None, int((y != IGNORE).sum()), 1.0, autocast)
        return real

    warmup_started = time.perf_counter()
    for _ in range(3 if not compile else 6):
        one()
    warmup = time.perf_counter() - warmup_started
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    tokens = sum(one() for _ in range(steps))
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    if device == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak, KiB on Linux
    return {
        "preset": preset,
        "parameters": model.num_params(),
        "objective": objective,
        "batch_size": batch_size,
        "compile": compile,
        "steps": steps,
        "tokens_per_s": round(tokens / seconds),
        "samples_per_s": round(tokens / seconds / (mean_sample - 1), 1),
        "step_ms": round(1000 * seconds / steps, 1),
        "warmup_s": round(warmup, 1),
        "peak_memory_mb": round(peak_mb),
    }
