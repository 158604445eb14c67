"""Training: one function whose loop fits on a screen, with small helpers beside it.

`train(config, out)` builds (or, resuming, reads back) the data, trains with AdamW, a
warm-up and cosine decay to lr/10, evaluates on the validation set every
`eval_interval` iterations, checkpoints there (and on Ctrl-C), and at the end writes the
weights and the test evaluation into the run directory.
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from arithlab import build, distributed, rundir
from arithlab.batches import AnswerBatches, PackedBatches, StreamBatches
from arithlab.config import SAME_RESULTS, Config, check, continued, get
from arithlab.data import (
    Text,
    build_splits,
    describe,
    describe_text,
    example_text,
    read_text,
    shot_sets,
    training_stream,
)
from arithlab.errors import ArithlabError, notice
from arithlab.evaluator import check_fewshot_fits, evaluate, fewshot, perplexity
from arithlab.folders import write_atomic
from arithlab.formats import DECODE_SLACK, get_format
from arithlab.hf import ADAPTER_DIR
from arithlab.model import GPT
from arithlab.tokenizer import CharTokenizer


def pick_device(name: str) -> str:
    if name != "auto":
        if name == "cuda" and not torch.cuda.is_available():
            raise ArithlabError("train.device: cuda asked for, but torch sees no CUDA device")
        if name == "mps" and not torch.backends.mps.is_available():
            raise ArithlabError("train.device: mps asked for, but torch sees no MPS device")
        return name
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


PACKED_SAMPLES = 4  # samples in a packed row, by default (model.block_size sets the row's length)

# The default's ceiling. The quickstart's 0.2M-parameter model already leaves 2 idle cores
# part unused (BENCHMARKS.md: ddp); past 2 threads it is not measured yet (BENCHMARKS.md:
# threads), so 4 keeps a large machine's cores from being spread over tiny matrices.
THREADS_CAP = 4


def default_threads(processes: int = 1) -> int:
    """CPU threads for each of `processes` processes: the cores this process may use less
    those already busy (the 1-minute load average), at most THREADS_CAP, at least 1. A busy
    core shared by two threads of one training step slows the whole step to its pace."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    busy = round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    return max(1, min(THREADS_CAP, (usable - busy) // processes))


def resolve(cfg: Config, splits, tokenizer=None) -> Config:
    """The config with every model dimension filled in (what config.yaml records): from
    the preset, or from the pretrained model `model.init` names; and the thread count, so
    that a resumed run takes the same."""
    model, least = build.model_dims(cfg)
    fmt = get_format(cfg.data.format)
    # Room for the longest sample (in any format mixed in), for decoding a little past the
    # longest answer, and for the training shifts of the positions; in tokens (characters,
    # unless a BPE tokenizer).
    samples = ["\n" + fmt.render(p) for p in (*splits.train, *splits.validation, *splits.test)]
    samples += ["\n" + get_format(name).render(p) for name in cfg.data.mix_formats for p in splits.train]
    if tokenizer is None or isinstance(tokenizer, CharTokenizer):
        longest = max(map(len, samples))
    else:
        longest = max(len(tokenizer.encode(s)) for s in samples)
    fitted = longest + DECODE_SLACK + cfg.train.position_offset
    if model.block_size is None:
        # A packed row holds about 4 samples; a stream window is the study's 256 characters.
        rows = {"packed": PACKED_SAMPLES * longest, "stream": 256}.get(cfg.train.objective, 0)
        model.block_size = max(least, fitted, rows)
    elif model.block_size < fitted:
        raise ArithlabError(
            f"config key model.block_size: {model.block_size} is too small; the longest sample needs {fitted} "
            f"({longest} tokens, {DECODE_SLACK} to decode past it, {cfg.train.position_offset} of position shift)"
        )
    if model.n_embd % model.n_head:
        raise ArithlabError(f"model: n_embd {model.n_embd} is not a multiple of n_head {model.n_head}")
    threads = cfg.train.threads or default_threads(distributed.world_size())
    return dataclasses.replace(cfg, model=model, train=dataclasses.replace(cfg.train, threads=threads))


def learning_rate(it: int, cfg) -> float:
    """Linear warm-up, then cosine decay to lr * min_lr_ratio at max_iters."""
    if it < cfg.warmup_iters:
        return cfg.lr * (it + 1) / cfg.warmup_iters
    progress = min(1.0, (it - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - floor)


def train(cfg: Config, out: Path, resume: bool = False, force: bool = False, progress: bool = True) -> Path:
    """Train the run described by `cfg` into `out` (or continue the one there).

    Under torchrun every process calls this; they train data-parallel (DDP) and process 0
    writes the run directory.
    """
    check(cfg)
    out = Path(out)
    device = distributed.start(pick_device(cfg.train.device))
    try:
        with rundir.writing(out, resume, force) if distributed.is_main() else nullcontext():
            return _train(cfg, out, resume, progress, device)
    finally:
        distributed.stop()


def _setup(cfg: Config, out: Path, resume: bool, device: str):
    if resume:
        cfg = _continued(cfg, out)
        splits = rundir.read_splits(out)
        tokenizer = build.run_tokenizer(cfg, out)
        text = read_text(cfg.data) if cfg.data.text_file else None
        if text is not None:
            recorded = rundir.read_json(out / rundir.DATA).get("text", {}).get("sha256")
            if recorded != text.sha256:
                raise ArithlabError(f"{text.path}: text file changed since run {out} started; cannot resume")
    else:
        splits = build_splits(cfg.data)
        text = read_text(cfg.data) if cfg.data.text_file else None
        tokenizer = build.new_tokenizer(cfg)
        if text is not None and isinstance(tokenizer, CharTokenizer):
            tokenizer = tokenizer.covering(text.whole)  # grows to cover the text, held-out part included
        cfg = resolve(cfg, splits, tokenizer)
        if cfg.eval.shots > 0:  # a few-shot evaluation that cannot run is an error now, not after training
            fmt, sets, problems = _fewshot_plan(cfg, splits, text.heldout if text else None)
            check_fewshot_fits(fmt, sets, problems, cfg.model.block_size, cfg.eval.reference_prompt)
        build.save_tokenizer(tokenizer, out)
        rundir.write_splits(out, splits)
        info = describe(splits, cfg.data.format, cfg.data.exclude)
        if text is not None:
            write_atomic(out / rundir.TEXT_HELDOUT, text.heldout)
            stream = training_stream(cfg.data, splits.train, text)
            info["text"] = describe_text(cfg.data, text, stream, tokenizer.vocab_size)
        rundir.write_json(out / rundir.DATA, info)
        rundir.write_json(out / rundir.ENV, rundir.environment(device))
        cfg.save(out / rundir.CONFIG)  # last: a run with a config has everything resuming reads
    return cfg, splits, tokenizer, text


def _continued(cfg: Config, out: Path) -> Config:
    """The config run `out` continues with: its own, with the execution keys (threads,
    device, ...) as `cfg` sets them; a change is recorded, and noted where it changes the
    floating-point results."""
    cfg, changed = continued(rundir.load_run_config(out), cfg)
    if changed and distributed.is_main():
        cfg.save(out / rundir.CONFIG)
        if set(changed) - set(SAME_RESULTS):
            settings = ", ".join(f"{key}={get(cfg, key)}" for key in changed)
            notice(
                f"resuming with {settings}: the continuation is no longer bit-identical to an uninterrupted run "
                "(thread count, device and precision change floating-point results)"
            )
    return cfg


def _train(cfg: Config, out: Path, resume: bool, progress: bool, device: str) -> Path:
    if resume and (out / rundir.EVAL).exists():
        return out  # finished already
    main = distributed.is_main()
    if main:
        cfg, splits, tokenizer, text = _setup(cfg, out, resume, device)
    distributed.barrier()
    if not main:  # the other processes read what process 0 wrote
        cfg, splits, tokenizer, text = _setup(cfg, out, True, device)
    tc = cfg.train
    threads = tc.threads or default_threads(distributed.world_size())  # a run from before threads were recorded
    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(tc.seed)
    generator = torch.Generator().manual_seed(tc.seed)
    fmt = get_format(cfg.data.format)
    if resume and (out / rundir.CHECKPOINT).exists():  # the checkpoint brings the weights
        model = build.run_model(cfg, tokenizer, out)
    else:
        model = build.new_model(cfg, tokenizer, out if main else None)
    model = model.to(device)
    optimizer = model.optimizer(tc.lr, tc.weight_decay, (tc.beta1, tc.beta2), fused=device.startswith("cuda"))
    window = cfg.model.block_size - tc.position_offset  # packed rows and stream windows
    if tc.objective == "answer":
        batches = AnswerBatches(splits.train, fmt, tokenizer, tc.balance_lengths, tc.loss_on)
    elif tc.objective == "packed":
        batches = PackedBatches(splits.train, fmt, tokenizer, window, tc.balance_lengths, tc.loss_on)
    else:
        batches = StreamBatches(training_stream(cfg.data, splits.train, text), tokenizer, window)
    state = {
        "iter": 0,
        "tokens_seen": 0,
        "loss_tokens": 0,
        "seconds": 0.0,
        "loss_sum": 0.0,
        "loss_steps": 0,
        "val_accuracy": None,
    }
    if resume and (out / rundir.CHECKPOINT).exists():
        state = rundir.load_checkpoint(out, model, optimizer, generator)
    if resume and main:
        rundir.trim_metrics(out, state["iter"])
    step = DistributedDataParallel(model) if distributed.world_size() > 1 else model
    step = torch.compile(step) if tc.compile else step
    autocast = autocast_for(device)

    desc = f"{cfg.name} ({threads} {'thread' if threads == 1 else 'threads'})"
    bar = tqdm(total=tc.max_iters, initial=state["iter"], disable=not (progress and main), desc=desc)
    started = time.perf_counter() - state["seconds"]
    model.train()
    with _deferred_interrupt() as interrupt:
        while state.get("stop_reason") is None:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(state["iter"], tc)
            # The global batch (the same in every process), then this process's rows of it.
            x, y, real_tokens = batches.sample(tc.batch_size, generator)
            offsets = None
            if tc.position_offset:
                offsets = distributed.my_slice(torch.randint(tc.position_offset + 1, (x.size(0),), generator=generator))
                offsets = offsets.to(device)
            loss_tokens = int((y != -100).sum())
            x, y = distributed.my_slice(x).to(device), distributed.my_slice(y).to(device)
            loss = train_step(step, model, optimizer, x, y, offsets, loss_tokens, tc.grad_clip, autocast)
            state["iter"] += 1
            state["tokens_seen"] += real_tokens
            state["loss_tokens"] += loss_tokens
            state["loss_sum"] += loss.item()
            state["loss_steps"] += 1
            bar.update(1)
            state["seconds"] = time.perf_counter() - started
            over_time = tc.max_minutes is not None and state["seconds"] >= 60 * tc.max_minutes
            # Decided together, so that all processes stop at the same step.
            interrupted, over_time = distributed.any_true([interrupt.requested, over_time], device)
            if interrupted:
                # Only between steps: the checkpoint then holds a whole step, no half of one.
                if main:
                    rundir.save_checkpoint(out, model, optimizer, generator, state)
                bar.close()
                raise KeyboardInterrupt
            if state["iter"] % tc.eval_interval == 0 or state["iter"] >= tc.max_iters or over_time:
                reason = None
                if main:
                    _log_eval(cfg, out, model, tokenizer, fmt, splits.validation, state, text)
                    bar.set_postfix(loss=f"{state['last_loss']:.4f}", val_acc=f"{state['val_accuracy']:.3f}")
                    reason = _stop_reason(tc, state, over_time)
                state["stop_reason"] = distributed.from_main(reason)
                if main:
                    rundir.save_checkpoint(out, model, optimizer, generator, state)
    bar.close()
    if main:
        _finish(cfg, out, model, tokenizer, fmt, splits, state, text)
    distributed.barrier()  # the others wait for process 0's test, then all leave together
    return out


def _finish(cfg, out, model, tokenizer, fmt, splits, state, text: Text | None = None) -> None:
    """The final weights and the test evaluation."""
    rundir.save_weights(model, out / rundir.WEIGHTS)
    if getattr(model, "lora", False):  # the adapter alone too, as peft reads it
        model.save_adapter(out / ADAPTER_DIR)
    summary, predictions = evaluate(
        model, tokenizer, fmt, splits.test, excluded=cfg.data.exclude, **decoding_options(cfg)
    )
    summary.update(
        seconds=state["seconds"],
        tokens_seen=state["tokens_seen"],
        iters=state["iter"],
        stop_reason=state["stop_reason"],
        processes=distributed.world_size(),
    )
    if text is not None:
        summary["text_perplexity"] = perplexity(model, tokenizer, text.heldout)
    if splits.extra_test:
        summary["extra_test"], _ = evaluate(
            model, tokenizer, fmt, splits.extra_test, excluded=cfg.data.exclude, **decoding_options(cfg)
        )
    rundir.write_jsonl(out / rundir.PREDICTIONS, predictions)
    if cfg.eval.shots > 0:
        rundir.add_fewshot(out, fewshot_eval(cfg, model, tokenizer, splits, text.heldout if text else None))
    rundir.write_json(out / rundir.EVAL, summary)


def train_step(
    step, model: GPT, optimizer, x, y, offsets, loss_tokens: int, grad_clip: float, autocast
) -> torch.Tensor:
    """One optimizer step on this process's rows; `step` is the model as called (wrapped
    in DDP and/or compiled), `loss_tokens` the whole batch's count of loss tokens."""
    with autocast:
        logits = step(x, offsets=offsets)
        # Summed here and divided by the whole batch's count (DDP then averages over
        # processes), so every process count takes the single-process step.
        loss = torch.nn.functional.cross_entropy(
            logits.view(-1, logits.size(-1)).float(), y.reshape(-1), ignore_index=-100, reduction="sum"
        ) * (distributed.world_size() / loss_tokens)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss


def autocast_for(device: str):
    """bf16 autocast on CUDA; full precision elsewhere."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else nullcontext()


def _stop_reason(tc, state: dict, over_time: bool) -> str | None:
    """Why training ends after this evaluation, or None to go on."""
    if tc.target_accuracy is not None and state["val_accuracy"] >= tc.target_accuracy:
        return "target_accuracy"
    if over_time:
        return "max_minutes"
    if state["iter"] >= tc.max_iters:
        return "max_iters"
    return None


class _Interrupt:
    requested = False


@contextmanager
def _deferred_interrupt():
    """Turn Ctrl-C (SIGINT) into a request the training loop honours between steps."""
    interrupt = _Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield interrupt  # signal handlers can only be set from the main thread
        return

    def request(signum, frame):
        interrupt.requested = True

    previous = signal.signal(signal.SIGINT, request)
    try:
        yield interrupt
    finally:
        signal.signal(signal.SIGINT, previous)


def decoding_options(cfg: Config) -> dict:
    ec = cfg.eval
    sampled = ec.decoding == "sample"
    return dict(
        batch_size=ec.batch_size,
        temperature=ec.temperature if sampled else 0.0,
        top_k=ec.top_k if sampled else None,
        reference_prompt=ec.reference_prompt,
    )


def fewshot_eval(cfg: Config, model, tokenizer, splits, heldout: str | None, problems=None) -> dict:
    """The few-shot evaluation cfg.eval describes, on `problems` (default: the first
    eval.shot_n test problems): fewshot.json's entry for its variant."""
    fmt, sets, problems = _fewshot_plan(cfg, splits, heldout, problems)
    by_shots = fewshot(model, tokenizer, fmt, sets, problems, **decoding_options(cfg))
    return {
        "variant": cfg.eval.shot_variant,
        "format": fmt.name,
        "sets": cfg.eval.shot_sets,
        "n": len(problems),
        "by_shots": by_shots,
        "example_sets": [
            {
                "examples": [example_text(fmt, p, w) for p, w in zip(s.examples, s.wrong or [None] * cfg.eval.shots)],
                "text": s.text,
            }
            for s in sets
        ],
    }


def _fewshot_plan(cfg: Config, splits, heldout: str | None, problems=None):
    """The format, example sets and problems of the few-shot evaluation cfg.eval describes."""
    ec = cfg.eval
    if ec.shot_variant == "scratchpad":
        fmt = get_format(ec.shot_format or "simplified")
    else:
        fmt = get_format(ec.shot_format or cfg.data.format)
    if ec.shot_variant == "text" and heldout is None:
        raise ArithlabError("few-shot variant text needs a text-mixed run (data.text_file); this run has no text")
    problems = splits.test[: ec.shot_n] if problems is None else problems
    if not problems:
        raise ArithlabError(f"config key eval.shot_n: {ec.shot_n} leaves no problems to evaluate")
    for problem in problems:
        fmt.check(problem)
    sets = shot_sets(splits.train, ec.shots, ec.shot_sets, fmt, ec.shot_variant, heldout, cfg.data.seed)
    return fmt, sets, problems


def _log_eval(cfg, out, model, tokenizer, fmt, validation, state, text: Text | None = None) -> None:
    """Validation accuracy, the mean training loss since the last evaluation and (text-mixed
    runs) the held-out text's perplexity, to metrics.jsonl."""
    summary, _ = evaluate(model, tokenizer, fmt, validation, **decoding_options(cfg))
    state["val_accuracy"] = summary["accuracy"]
    state["last_loss"] = state["loss_sum"] / max(state["loss_steps"], 1)
    state["loss_sum"], state["loss_steps"] = 0.0, 0
    row = {
        "iter": state["iter"],
        "loss": state["last_loss"],
        "val_accuracy": summary["accuracy"],
        "tokens_seen": state["tokens_seen"],
        "loss_tokens": state["loss_tokens"],
        "seconds": round(state["seconds"], 3),
    }
    if text is not None:
        row["text_perplexity"] = perplexity(model, tokenizer, text.heldout)
    rundir.log_metrics(out, row)
