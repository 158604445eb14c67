"""Training: one function whose loop fits on a screen, with small helpers beside it.

`train(config, run)` builds (or, resuming, reads back) the data of run directory `run`, trains with AdamW, a
warm-up and cosine decay to lr/10, evaluates on the validation set every
`eval_interval` iterations, checkpoints there (and on Ctrl-C), and at the end writes the
weights and the test evaluation into the run directory.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from arithlab import build, devices, distributed, rundir, trackers
from arithlab.batches import IGNORE, AnswerBatches, PackedBatches, StreamBatches, number_gaps
from arithlab.config import SAME_RESULTS, Config, check, continued, get
from arithlab.data import Splits, Text, build_splits, describe, describe_text, read_text, training_stream
from arithlab.errors import ArithlabError, notice
from arithlab.evaluator import decoding_options, evaluate, fewshot_eval, perplexity
from arithlab.folders import write_atomic
from arithlab.formats import get_format
from arithlab.hf import ADAPTER_DIR
from arithlab.tokenizer import CharTokenizer


@dataclass
class TrainState:
    """How far training has come; a checkpoint's state.json holds it (beside the optimizer's
    groups), so that a resumed run continues exactly."""

    iter: int = 0
    tokens_seen: int = 0  # non-padding input tokens
    loss_tokens: int = 0  # tokens the loss covered
    seconds: float = 0.0  # training time, over every resume
    loss_sum: float = 0.0  # the training losses since the last evaluation, summed,
    loss_steps: int = 0  # and how many
    val_accuracy: float | None = None
    evals_at_target: int = 0  # evaluations in a row at train.target_accuracy or above
    last_loss: float | None = None  # the mean training loss at the last evaluation
    best_accuracy: float | None = None  # train.keep_best: the best validation so far,
    best_iter: int | None = None  # and the (latest) iteration that had it
    stop_reason: str | None = None  # set at the evaluation after which training ends

    @classmethod
    def from_json(cls, values: dict) -> TrainState:
        """The state a state.json holds; one written before a field existed gives its default."""
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values})


def learning_rate(it: int, cfg) -> float:
    """Linear warm-up, then cosine decay to lr * min_lr_ratio at max_iters."""
    if it < cfg.warmup_iters:
        return cfg.lr * (it + 1) / cfg.warmup_iters
    progress = min(1.0, (it - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - floor)


def train(cfg: Config, run: Path, resume: bool = False, force: bool = False, progress: bool = True) -> Path:
    """Train the run described by `cfg` into run directory `run` (or continue the one there).

    Under torchrun every process calls this; they train data-parallel (DDP) and process 0
    writes the run directory.
    """
    check(cfg)
    trackers.check_installed(cfg.train.log_to)  # before the run directory is made
    run = Path(run)
    device = distributed.start(devices.pick_device(cfg.train.device))
    try:
        with rundir.writing(run, resume, force) if distributed.is_main() else nullcontext():
            return _train(cfg, run, resume, progress, device)
    finally:
        distributed.stop()


def _train(cfg: Config, run: Path, resume: bool, progress: bool, device: str) -> Path:
    if resume and (run / rundir.EVAL).exists():
        return run  # finished already
    main = distributed.is_main()
    if main:
        cfg, splits, tokenizer, text = _setup(cfg, run, resume, device)
    distributed.barrier()
    if not main:  # the other processes read what process 0 wrote
        cfg, splits, tokenizer, text = _setup(cfg, run, True, device)
    tc = cfg.train
    threads = tc.threads or devices.default_threads(distributed.world_size())  # a run from before threads were recorded
    devices.use(device, threads)
    torch.manual_seed(tc.seed)
    generator = torch.Generator().manual_seed(tc.seed)
    fmt = get_format(cfg.data.format)
    model, optimizer, state = _model_and_state(cfg, run, resume, tokenizer, device, generator)
    best = rundir.load_best(run) if resume and main else None  # train.keep_best's weights so far
    batches = _batches(cfg, splits, tokenizer, text)
    if resume and main:
        rundir.trim_metrics(run, state.iter)
    # The model as each step calls it: in DDP with several processes, compiled if asked.
    wrapped = DistributedDataParallel(model) if distributed.world_size() > 1 else model
    wrapped = torch.compile(wrapped) if tc.compile else wrapped
    autocast = devices.autocast_for(device)

    desc = f"{cfg.name} ({threads} {'thread' if threads == 1 else 'threads'})"
    bar = tqdm(total=tc.max_iters, initial=state.iter, disable=not (progress and main), desc=desc)
    started = time.perf_counter() - state.seconds
    model.train()
    tracked = trackers.tracking(
        tc.log_to if main else [], run, cfg.to_dict(), tc.log_group, state.iter if resume else None
    )
    with _deferred_interrupt() as interrupt, tracked as track:
        while state.stop_reason is None:
            _step(tc, wrapped, model, optimizer, batches, generator, device, autocast, state)
            bar.update(1)
            state.seconds = time.perf_counter() - started
            over_time = tc.max_minutes is not None and state.seconds >= 60 * tc.max_minutes
            # Decided together, so that all processes stop at the same step.
            interrupted, over_time = distributed.any_true([interrupt.requested, over_time], device)
            evaluated = state.iter % tc.eval_interval == 0 or state.iter >= tc.max_iters or over_time
            if evaluated:
                if main:
                    _log_eval(cfg, run, model, tokenizer, fmt, splits.validation, state, text, track)
                    bar.set_postfix(loss=f"{state.last_loss:.4f}", val_acc=f"{state.val_accuracy:.3f}")
                    if tc.keep_best and (state.best_accuracy is None or state.val_accuracy >= state.best_accuracy):
                        best = {name: value.detach().to("cpu", copy=True) for name, value in model.state_dict().items()}
                        state.best_accuracy, state.best_iter = state.val_accuracy, state.iter
                state.stop_reason = distributed.from_main(_stop_reason(tc, state, over_time) if main else None)
                if main:
                    _save_checkpoint(run, model, optimizer, generator, state, best)
            if interrupted:
                # Only between steps, so that the checkpoint holds a whole step, and after
                # the step's evaluation, so that the resumed run logs (and keeps the best of,
                # and stops on) every evaluation the uninterrupted run has.
                if main and not evaluated:
                    _save_checkpoint(run, model, optimizer, generator, state, best)
                bar.close()
                raise KeyboardInterrupt
    bar.close()
    if main:
        if best is not None:  # train.keep_best: the best validation's weights are the run's
            model.load_state_dict(best)
        _finish(cfg, run, model, tokenizer, fmt, splits, state, text)
    distributed.barrier()  # the others wait for process 0's test, then all leave together
    return run


def _setup(cfg: Config, run: Path, resume: bool, device: str):
    """(config, splits, tokenizer, text) of the run: read back from run directory `run` when
    resuming, else built, resolved and written there."""
    if resume:
        cfg = _continued(cfg, run)
        splits = rundir.read_splits(run)
        tokenizer = build.run_tokenizer(cfg, run)
        text = read_text(cfg.data) if cfg.data.text_file else None
        if text is not None:
            recorded = rundir.read_json(run / rundir.DATA).get("text", {}).get("sha256")
            if recorded != text.sha256:
                raise ArithlabError(f"{text.path}: text file changed since run {run} started; cannot resume")
        return cfg, splits, tokenizer, text
    splits = build_splits(cfg.data)
    text = read_text(cfg.data) if cfg.data.text_file else None
    tokenizer = build.new_tokenizer(cfg)
    if text is not None and isinstance(tokenizer, CharTokenizer):
        tokenizer = tokenizer.covering(text.whole)  # grows to cover the text, held-out part included
    cfg = build.resolve(cfg, splits, tokenizer, text.heldout if text else None)
    build.save_tokenizer(tokenizer, run)
    rundir.write_splits(run, splits)
    info = describe(splits, cfg.data.format, cfg.data.exclude)
    if text is not None:
        write_atomic(run / rundir.TEXT_HELDOUT, text.heldout)
        stream = training_stream(cfg.data, splits.train, text)
        info["text"] = describe_text(cfg.data, text, stream, tokenizer.vocab_size)
    rundir.write_json(run / rundir.DATA, info)
    rundir.write_json(run / rundir.ENV, rundir.environment(device))
    cfg.save(run / rundir.CONFIG)  # last: a run with a config has everything resuming reads
    return cfg, splits, tokenizer, text


def _continued(cfg: Config, run: Path) -> Config:
    """The config run `run` continues with: its own, with the execution keys (threads,
    device, ...) as `cfg` sets them; a change is recorded, and noted where it changes the
    floating-point results."""
    cfg, changed = continued(rundir.load_run_config(run), cfg)
    if changed and distributed.is_main():
        cfg.save(run / rundir.CONFIG)
        if set(changed) - set(SAME_RESULTS):
            settings = ", ".join(f"{key}={get(cfg, key)}" for key in changed)
            notice(
                f"resuming with {settings}: the continuation is no longer bit-identical to an uninterrupted run "
                "(thread count, device and precision change floating-point results)"
            )
    return cfg


def _model_and_state(cfg: Config, run: Path, resume: bool, tokenizer, device: str, generator: torch.Generator):
    """The model on `device`, its optimizer and the training state: new, or (resuming) as
    the checkpoint left them, the random generators' states included."""
    tc = cfg.train
    checkpoint = resume and (run / rundir.CHECKPOINT).exists()
    if checkpoint:  # the checkpoint brings the weights
        model = build.run_model(cfg, tokenizer, run)
    else:
        model = build.new_model(cfg, tokenizer, run if distributed.is_main() else None)
    model = model.to(device)
    optimizer = model.optimizer(tc.lr, tc.weight_decay, (tc.beta1, tc.beta2), fused=device.startswith("cuda"))
    state = TrainState()
    if checkpoint:
        state = TrainState.from_json(rundir.load_checkpoint(run, model, optimizer, generator))
    return model, optimizer, state


def _batches(cfg: Config, splits: Splits, tokenizer, text: Text | None):
    """The training batches of `train.objective` (batches.py)."""
    tc, fmt = cfg.train, get_format(cfg.data.format)
    window = cfg.model.block_size - tc.position_offset  # packed rows and stream windows
    if tc.objective == "answer":
        return AnswerBatches(splits.train, fmt, tokenizer, tc.balance_lengths, tc.loss_on)
    if tc.objective == "packed":
        return PackedBatches(splits.train, fmt, tokenizer, window, tc.balance_lengths, tc.loss_on)
    return StreamBatches(training_stream(cfg.data, splits.train, text), tokenizer, window)


def _step(tc, wrapped, model, optimizer, batches, generator, device: str, autocast, state: TrainState) -> None:
    """One training step at `state.iter`, counted into `state`."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(state.iter, tc)
    # The global batch (the same in every process), then this process's rows of it.
    x, y, real_tokens = batches.sample(tc.batch_size, generator)
    scored = y != IGNORE
    offsets = None  # drawn for the whole batch, so that every process draws alike
    if tc.position_offset:
        offsets = torch.randint(tc.position_offset + 1, (x.size(0),), generator=generator)
    if tc.position_gaps:
        gaps = number_gaps(x, scored, model.digits.cpu(), tc.position_gaps, generator)
        offsets = gaps if offsets is None else gaps + offsets[:, None]
    if offsets is not None:
        offsets = distributed.my_slice(offsets).to(device)
    loss_tokens = int(scored.sum())
    x, y = distributed.my_slice(x).to(device), distributed.my_slice(y).to(device)
    loss = train_step(wrapped, model, optimizer, x, y, offsets, loss_tokens, tc.grad_clip, autocast)
    state.iter += 1
    state.tokens_seen += real_tokens
    state.loss_tokens += loss_tokens
    state.loss_sum += loss.item()
    state.loss_steps += 1


def train_step(wrapped, model, optimizer, x, y, offsets, loss_tokens: int, grad_clip: float, autocast) -> torch.Tensor:
    """One optimizer step on this process's rows; `wrapped` is the model as called (in DDP
    and/or compiled), `loss_tokens` the whole batch's count of loss tokens."""
    scored = y != IGNORE
    with autocast:
        logits = wrapped(x, offsets=offsets, scored=scored)  # (N, V): the scored places only
        # Summed here and divided by the whole batch's count (DDP then averages over
        # processes), so every process count takes the single-process step.
        loss = torch.nn.functional.cross_entropy(logits.float(), y[scored], reduction="sum") * (
            distributed.world_size() / loss_tokens
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss


def _stop_reason(tc, state: TrainState, over_time: bool) -> str | None:
    """Why training ends after this evaluation, or None to go on."""
    if tc.target_accuracy is not None and state.evals_at_target >= tc.target_patience:
        return "target_accuracy"
    if over_time:
        return "max_minutes"
    if state.iter >= tc.max_iters:
        return "max_iters"
    return None


def _save_checkpoint(run: Path, model, optimizer, generator: torch.Generator, state: TrainState, best) -> None:
    rundir.save_checkpoint(run, model, optimizer, generator, dataclasses.asdict(state), best)


def _log_eval(cfg, run, model, tokenizer, fmt, validation, state: TrainState, text: Text | None, track) -> None:
    """Validation accuracy, the mean training loss since the last evaluation and (text-mixed
    runs) the held-out text's perplexity, to metrics.jsonl and to the trackers (`track`)."""
    summary, _ = evaluate(model, tokenizer, fmt, validation, **decoding_options(cfg))
    state.val_accuracy = summary["accuracy"]
    target = cfg.train.target_accuracy
    state.evals_at_target = state.evals_at_target + 1 if target is not None and state.val_accuracy >= target else 0
    state.last_loss = state.loss_sum / max(state.loss_steps, 1)
    state.loss_sum, state.loss_steps = 0.0, 0
    row = {
        "iter": state.iter,
        "loss": state.last_loss,
        "val_accuracy": summary["accuracy"],
        "tokens_seen": state.tokens_seen,
        "loss_tokens": state.loss_tokens,
        "seconds": round(state.seconds, 3),
    }
    if text is not None:
        row["text_perplexity"] = perplexity(model, tokenizer, text.heldout)
    rundir.log_metrics(run, row)
    track(row)


def _finish(cfg, run, model, tokenizer, fmt, splits, state: TrainState, text: Text | None = None) -> None:
    """The run's weights (the last step's, or with train.keep_best those the caller put back)
    and the test evaluation."""
    rundir.save_weights(model, run / rundir.WEIGHTS)
    if getattr(model, "lora", False):  # the adapter alone too, as peft reads it
        model.save_adapter(run / ADAPTER_DIR)
    summary, predictions = evaluate(
        model, tokenizer, fmt, splits.test, excluded=cfg.data.exclude, **decoding_options(cfg)
    )
    summary.update(
        seconds=state.seconds,
        tokens_seen=state.tokens_seen,
        iters=state.iter,
        stop_reason=state.stop_reason,
        processes=distributed.world_size(),
    )
    if cfg.train.keep_best:
        summary.update(best_iter=state.best_iter, best_val_accuracy=state.best_accuracy)
    if text is not None:
        summary["text_perplexity"] = perplexity(model, tokenizer, text.heldout)
    if splits.extra_test:
        summary["extra_test"], _ = evaluate(
            model, tokenizer, fmt, splits.extra_test, excluded=cfg.data.exclude, **decoding_options(cfg)
        )
    rundir.write_jsonl(run / rundir.PREDICTIONS, predictions)
    if cfg.eval.shots > 0:
        rundir.add_fewshot(run, fewshot_eval(cfg, model, tokenizer, splits, text.heldout if text else None))
    rundir.write_json(run / rundir.EVAL, summary)


class _Interrupt:
    requested = False


@contextmanager
def _deferred_interrupt():
    """Turn Ctrl-C (SIGINT) and SIGTERM (a scheduler's stop, `kill`) into a request the
    training loop honours between steps: the run saves its checkpoint and can resume."""
    interrupt = _Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield interrupt  # signal handlers can only be set from the main thread
        return

    def request(signum, frame):
        interrupt.requested = True

    previous = {sig: signal.signal(sig, request) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield interrupt
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
