"""A run's model and tokenizer, by where its weights start (`model.init`), and the config
made whole for its data (`resolve`).

- none: our GPT, randomly initialized, with the character vocabulary;
- `run:PATH`: our GPT with the weights (and vocabulary) of one of our runs, then trained
  on this run's data: pretrain on one format (or text), fine-tune on another;
- `hf:PATH_OR_NAME`: a pretrained GPT-2 in Hugging Face form, with its own BPE tokenizer,
  fine-tuned whole or through LoRA adapters (hf.py).

The trainer and the evaluator see one interface whichever it is: a model with
forward(idx, cache, offsets) -> logits, generate(...), optimizer(...) and
config.block_size, and a tokenizer with encode, decode, ids_containing and save
(evaluator.LanguageModel and evaluator.Tokenizer).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import torch

from arithlab import distributed, rundir
from arithlab.config import Config, ModelConfig, init_of, with_preset
from arithlab.data import Splits
from arithlab.devices import default_threads
from arithlab.errors import ArithlabError
from arithlab.evaluator import Tokenizer, check_fewshot_fits, fewshot_plan
from arithlab.formats import DECODE_SLACK, get_format
from arithlab.hf import HFModel, HFTokenizer, checkpoint_dims
from arithlab.model import GPT, GPTConfig
from arithlab.tokenizer import CharTokenizer

PACKED_SAMPLES = 4  # samples in a packed row, by default (model.block_size sets the row's length)


def _source_run(target: str) -> tuple[Path, Config]:
    source = Path(target)
    if not (source / rundir.CONFIG).exists():
        raise ArithlabError(f"config key model.init: run:{target}: not a run directory (no {rundir.CONFIG})")
    source_cfg = rundir.load_run_config(source)
    if init_of(source_cfg)[0] == "hf":
        raise ArithlabError(
            f"config key model.init: run:{target} is a fine-tuned Hugging Face run; export it "
            "(arithlab export RUN --hf DIR) and start from hf:DIR"
        )
    return source, source_cfg


# --- a new run --------------------------------------------------------------------


def new_tokenizer(cfg: Config):
    scheme, target = init_of(cfg)
    if scheme == "hf":
        return HFTokenizer.load(target, cfg.model.digit_spaces)
    if scheme == "run":
        source, _ = _source_run(target)
        return CharTokenizer.load(source / rundir.VOCAB)
    return CharTokenizer()


def model_dims(cfg: Config) -> tuple[ModelConfig, int]:
    """The model section with every dimension but perhaps block_size filled in, and the
    least block_size the start allows (a pretrained model's own)."""
    scheme, target = init_of(cfg)
    m = cfg.model
    if scheme == "hf":
        dims = checkpoint_dims(target, m.dropout)
        for key in ("n_layer", "n_head", "n_embd", "block_size"):
            if getattr(m, key) is not None and getattr(m, key) != dims[key]:
                raise ArithlabError(
                    f"config key model.{key}: {getattr(m, key)} differs from the pretrained model's {dims[key]} "
                    f"(model.init {m.init}); leave it unset"
                )
        if Path(target).is_dir():  # recorded absolute, so that the run can be resumed from anywhere
            dims["init"] = f"hf:{Path(target).resolve()}"
        return dataclasses.replace(m, bias=True, **dims), dims["block_size"]
    if scheme == "run":
        source, source_cfg = _source_run(target)
        src = source_cfg.model
        for key in ("n_layer", "n_head", "n_embd"):
            if getattr(m, key) is not None and getattr(m, key) != getattr(src, key):
                raise ArithlabError(
                    f"config key model.{key}: {getattr(m, key)} does not match the pretrained run's "
                    f"{getattr(src, key)} (model.init {m.init}); leave it unset"
                )
        if m.block_size is not None and m.block_size < src.block_size:
            raise ArithlabError(
                f"config key model.block_size: {m.block_size} is smaller than the pretrained run's "
                f"{src.block_size} (model.init {m.init})"
            )
        dims = dict(preset=src.preset, n_layer=src.n_layer, n_head=src.n_head, n_embd=src.n_embd, bias=src.bias)
        dims["init"] = f"run:{source.resolve()}"
        dropout = src.dropout if m.dropout is None else m.dropout
        return dataclasses.replace(m, dropout=dropout, **dims), src.block_size
    return with_preset(m), 0


def resolve(cfg: Config, splits: Splits, tokenizer: Tokenizer | None = None, heldout: str | None = None) -> Config:
    """The config made whole for these data, as config.yaml records it: every model
    dimension, from the preset or the pretrained model `model.init` names; block_size, fitted
    to the longest sample; and the thread count, so that a resumed run takes the same.

    The one step where the config meets the data, so the rules that need the data are
    checked here: block_size must hold the longest sample, and a few-shot evaluation
    (`heldout`: a text-mixed run's held-out text) must fit it."""
    model, least = model_dims(cfg)
    model.block_size = _fitted_block_size(cfg, model.block_size, least, splits, tokenizer)
    threads = cfg.train.threads or default_threads(distributed.world_size())
    cfg = dataclasses.replace(cfg, model=model, train=dataclasses.replace(cfg.train, threads=threads))
    if cfg.eval.shots > 0:  # a few-shot evaluation that cannot run is an error now, not after training
        check_fewshot_fits(*fewshot_plan(cfg, splits, heldout), cfg.model.block_size, cfg.eval.reference_prompt)
    return cfg


def _fitted_block_size(cfg: Config, given: int | None, least: int, splits: Splits, tokenizer) -> int:
    """Room for the longest sample (in any format mixed in), for decoding a little past the
    longest answer, and for the training shifts of the positions; in tokens (characters,
    unless a BPE tokenizer). `given`: model.block_size as set, checked; `least`: the
    least a pretrained start allows."""
    fmt = get_format(cfg.data.format)
    samples = ["\n" + fmt.render(p) for p in (*splits.train, *splits.validation, *splits.test)]
    samples += ["\n" + get_format(name).render(p) for name in cfg.data.mix_formats for p in splits.train]
    if tokenizer is None or isinstance(tokenizer, CharTokenizer):
        longest = max(map(len, samples))
    else:
        longest = max(len(tokenizer.encode(s)) for s in samples)
    shift = cfg.train.position_offset + _gap_room(cfg, fmt, splits)
    fitted = longest + DECODE_SLACK + shift
    if given is None:
        # A packed row holds about 4 samples; a stream window is the study's 256 characters.
        rows = {"packed": PACKED_SAMPLES * longest, "stream": 256}.get(cfg.train.objective, 0)
        return max(least, fitted, rows)
    if given < fitted:
        raise ArithlabError(
            f"config key model.block_size: {given} is too small; the longest sample needs {fitted} "
            f"({longest} tokens, {DECODE_SLACK} to decode past it, {shift} of position shift)"
        )
    return given


def _gap_room(cfg: Config, fmt, splits: Splits) -> int:
    """The most that `train.position_gaps` can shift a training row: one gap before each
    number of its prompt and one before its answer."""
    if not cfg.train.position_gaps:
        return 0
    numbers = max(len(re.findall("[0-9]+", fmt.prompt(p))) for p in splits.train)
    return cfg.train.position_gaps * (numbers + 1)


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
        init_std=m.init_std,
        positions=m.positions,
        place_table=m.place_table,
        digit_ids=tuple(tokenizer.encode("0123456789")),
        equals_id=tokenizer.encode("=")[0],
        newline_id=tokenizer.encode("\n")[0],
    )


def save_tokenizer(tokenizer, run: Path) -> None:
    """vocab.json, or a pretrained model's tokenizer files under hf/."""
    tokenizer.save(run / rundir.VOCAB if isinstance(tokenizer, CharTokenizer) else run)


def new_model(cfg: Config, tokenizer, run: Path | None = None):
    """The (resolved) config's model with its starting weights; a Hugging Face start
    writes its architecture into run directory `run` (if given)."""
    scheme, target = init_of(cfg)
    if scheme == "hf":
        return HFModel.pretrained(target, cfg, run)
    model = GPT(gpt_config(cfg, tokenizer))
    if scheme == "run":
        load_pretrained_run(model, Path(target))
    return model


def load_pretrained_run(model: GPT, source: Path) -> None:
    """Copy run `source`'s weights into `model`: names and shapes must match, except that
    a longer position table keeps the source's rows and starts the rest fresh."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = source / rundir.WEIGHTS
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise ArithlabError(f"config key model.init: run:{source}: unreadable weights {path} ({err})") from None
    own = model.state_dict()
    where = f"config key model.init: run:{source}"
    for name, tensor in tensors.items():
        if name not in own:
            raise ArithlabError(f"{where}: its weight {name} has no place in this model")
        mine = own[name]
        grows = name == "transformer.wpe.weight" and tensor.size(0) < mine.size(0) and tensor.size(1) == mine.size(1)
        if tensor.shape != mine.shape and not grows:
            raise ArithlabError(f"{where}: weight {name} is {tuple(tensor.shape)}, this model's {tuple(mine.shape)}")
        with torch.no_grad():
            mine[: tensor.size(0)].copy_(tensor)
    tied = {"lm_head.weight", "transformer.wte.weight"}
    missing = sorted(n for n in own if n not in tensors and not (n in tied and tied & tensors.keys()))
    if missing:
        raise ArithlabError(f"{where}: no weight {missing[0]} in {path}")


# --- an existing run --------------------------------------------------------------


def run_tokenizer(cfg: Config, run: Path):
    if init_of(cfg)[0] == "hf":
        return HFTokenizer.load_run(run, cfg.model.digit_spaces)
    return CharTokenizer.load(run / rundir.VOCAB)


def run_model(cfg: Config, tokenizer, run: Path):
    """The architecture of run `run`'s model (weights: load them after)."""
    if init_of(cfg)[0] == "hf":
        return HFModel.from_run(run, cfg)
    return GPT(gpt_config(cfg, tokenizer))


def load_run_model(run: Path, cfg: Config, device: str):
    """(model with its trained weights, in eval mode; tokenizer) of run `run`."""
    tokenizer = run_tokenizer(cfg, run)
    model = run_model(cfg, tokenizer, run).to(device)
    rundir.load_weights(model, run / rundir.WEIGHTS)
    return model.eval(), tokenizer
