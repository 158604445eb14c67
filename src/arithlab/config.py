"""Run configuration: dataclasses, read from YAML, overridden with dotted `key=value`s.

Every key is checked: an unknown key or a value of the wrong type is an ArithlabError
that names the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from arithlab.errors import ArithlabError


@dataclass
class DataConfig:
    operation: str = "add"  # add, sub, mul, sin, sqrt (or + - *)
    # Several operations in one model (instead of `operation`), e.g. [add, sub, mul]: the
    # training samples are split by `shares` (default: equally); validation and test hold
    # n_val and n_test problems of each, and evaluation reports each operation apart.
    operations: list[str] = field(default_factory=list)
    shares: list[float] = field(default_factory=list)
    format: str = "reverse"
    digits: int = 3  # operands of 1..digits digits
    n_train: int = 10000
    sampling: str = "balanced"  # balanced | uniform
    n_val: int = 500  # validation problems, evaluated during training
    n_test: int = 10000
    test_digits: int | None = None  # default: digits
    test_sampling: str = "uniform"
    exclude: list[int] = field(default_factory=list)  # numbers never used as an operand in training
    # Length generalization: operand lengths (digits) to train on, each operand's drawn
    # uniformly from this list, digits uniform (e.g. [1, 2, 3, 4, 6, 7]: 1-7 without 5);
    # validation draws from them too. The test covers every (length of a, length of b)
    # pair of test_lengths, n_test split evenly over the pairs. Empty: `digits`, `sampling`.
    lengths: list[int] = field(default_factory=list)
    test_lengths: list[int] = field(default_factory=list)
    seed: int = 0  # fixes the problems; apart from train.seed
    train_file: str | None = None  # problem files instead of sampling
    test_file: str | None = None
    # A second test set every run is also scored on (eval.json: `extra_test`), such as one
    # stratified by operand lengths (`arithlab data lengths`); none of it may be in training.
    extra_test_file: str | None = None
    # Text mixed with the arithmetic (the study's Shakespeare runs; objective stream only).
    # The file's last `text_heldout` share is held out for perplexity; the rest is cut into
    # chunks of `text_chunk` characters. The training stream is `text_blocks` blocks, each
    # `text_chunks` text chunks (in order, from the start again when the text runs out), a
    # newline, then the next 1/text_blocks of the training samples (data.py: mix_text).
    # More formats of the same training problems, mixed in the stream (the study mixes plain
    # and scratchpad samples): each block holds its share of the data.format samples, then
    # of each of these; evaluation stays in data.format (few-shot can use another).
    mix_formats: list[str] = field(default_factory=list)
    text_file: str | None = None
    text_chunk: int = 256
    text_chunks: int = 72
    text_blocks: int = 100
    text_heldout: float = 0.1


@dataclass
class ModelConfig:
    preset: str = "small"  # small | tiny | nanogpt | gpt2
    n_layer: int | None = None  # None: the preset's
    n_head: int | None = None
    n_embd: int | None = None
    dropout: float | None = None
    bias: bool = True
    block_size: int | None = None  # None: fits the longest sample (answer), or 256 (stream)
    # learned (the study's) | none | abacus | coupled: the last two embed each digit's place
    # in its number and need numbers written least significant digit first (reverse_all).
    positions: str = "learned"
    # abacus / coupled: a learned embedding per place, or fixed sinusoids of the place (the
    # same function at every place, so places never trained together still relate by distance),
    # or `relative`: no embedding, a learned attention bias per difference of places; `local`:
    # the same, and digits farther apart than 4 places do not attend to each other.
    place_table: str = "learned"
    # Where the weights start: None (random), `run:PATH` (one of our runs: its model and
    # vocabulary, then trained on this config's data) or `hf:PATH_OR_NAME` (a pretrained
    # GPT-2 in Hugging Face form, with its own BPE tokenizer; needs arithlab[hf]).
    init: str | None = None
    lora_rank: int = 0  # hf: only: 0 fine-tunes every weight; r > 0 trains LoRA adapters of rank r
    lora_alpha: float = 16.0  # LoRA's scale is lora_alpha / lora_rank
    lora_dropout: float = 0.0
    # hf: only: write a space between adjacent digits ("123" -> "1 2 3") before the BPE
    # tokenizer, so every digit is its own token; generated text is read back without them.
    digit_spaces: bool = False


@dataclass
class TrainConfig:
    objective: str = "answer"  # answer | packed | stream (batches.py)
    loss_on: str = "answer"  # answer | sample: what the answer and packed losses cover
    # Draw training rows so that every operand-length pair comes up equally often.
    balance_lengths: bool = False
    batch_size: int = 256
    max_iters: int = 2000
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * this
    warmup_iters: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    eval_interval: int = 250
    target_accuracy: float | None = None  # stop once validation accuracy reaches this
    max_minutes: float | None = None  # stop (evaluate, save, test) once training has run this long
    seed: int = 0  # fixes initialization, batch order and dropout
    # Shift each training row's position ids by a random 0..position_offset (0: off);
    # evaluation uses no shift. Keeps the GPT-2 architecture, helps operands of unequal length.
    position_offset: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps
    threads: int | None = None  # CPU threads; None: all cores
    compile: bool = False


@dataclass
class EvalConfig:
    batch_size: int = 1000
    decoding: str = "greedy"  # greedy | sample (the study's temperature and top-k)
    temperature: float = 0.8
    top_k: int = 200
    # The reference code's prompts lack the newline every training sample follows; True
    # reproduces that pitfall (FORMATS.md), only for comparison.
    reference_prompt: bool = False
    # Few-shot evaluation (fewshot.json; at the end of training where shots > 0, and by
    # `arithlab eval RUN --shots K`): 0..shots solved training examples before each query,
    # shot_sets example sets, on the first shot_n test problems. Variants: plain (examples
    # in the run's format), scratchpad (examples and query in shot_format, by default
    # simplified), noisy (examples with wrong answers), text (a line of the held-out text first).
    shots: int = 0
    shot_sets: int = 5
    shot_variant: str = "plain"
    shot_format: str | None = None
    shot_n: int = 1000


@dataclass
class Config:
    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


CHOICES = {
    "data.sampling": ("balanced", "uniform"),
    "data.test_sampling": ("balanced", "uniform"),
    "train.objective": ("answer", "packed", "stream"),
    "train.loss_on": ("answer", "sample"),
    "model.positions": ("learned", "none", "abacus", "coupled"),
    "model.place_table": ("learned", "sinusoidal", "relative", "local"),
    "train.device": ("auto", "cpu", "cuda", "mps"),
    "eval.decoding": ("greedy", "sample"),
    "eval.shot_variant": ("plain", "scratchpad", "noisy", "text"),
}


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "null")


def _coerce(key: str, value, tp):
    """`value` as type `tp`, or an ArithlabError naming the key."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(key, value, option)
            except ArithlabError:
                pass
        allowed = " or ".join(_type_name(o) for o in options)
        raise ArithlabError(f"config key {key}: {value!r} is not {allowed}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ArithlabError(f"config key {key}: {value!r} is not a list")
        return [_coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if tp is float and isinstance(value, str):
        # PyYAML reads 3e-3 (no dot) as a string; a float field takes it as the number.
        try:
            value = float(value)
        except ValueError:
            pass
    ok = (
        (tp is bool and isinstance(value, bool))
        or (tp is int and isinstance(value, int) and not isinstance(value, bool))
        or (tp is float and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (tp is str and isinstance(value, str))
    )
    if not ok:
        raise ArithlabError(f"config key {key}: {value!r} is not {_type_name(tp)}")
    return float(value) if tp is float else value


def _build(cls, values: dict, prefix: str):
    if not isinstance(values, dict):
        raise ArithlabError(f"config key {prefix.rstrip('.') or '(top)'}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise ArithlabError(f"unknown config key {full!r} (allowed: {', '.join(sorted(names))})")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value or {}, f"{full}.")
        else:
            kwargs[key] = _coerce(full, value, tp)
            if full in CHOICES and kwargs[key] not in CHOICES[full]:
                raise ArithlabError(f"config key {full}: {value!r} is not one of {', '.join(CHOICES[full])}")
    return cls(**kwargs)


def config_from_dict(values: dict) -> Config:
    return _build(Config, values, "")


def parse_overrides(pairs: list[str]) -> dict:
    """`["train.max_iters=2000", ...]` as a nested dict; values are read as YAML scalars."""
    nested: dict = {}
    for pair in pairs:
        if "=" not in pair:
            raise ArithlabError(f"--set {pair!r}: expected key=value, e.g. train.max_iters=2000")
        key, raw = pair.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ArithlabError(f"--set {pair!r}: {part} is not a section")
        node[parts[-1]] = value
    return nested


def merge(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path) -> dict:
    try:
        values = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise ArithlabError(f"{path}: cannot read ({err.strerror})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ArithlabError(f"{path}:{where} not valid YAML") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ArithlabError(f"{path}: expected a mapping of config sections")
    return values


def load_config(path: Path | None = None, overrides: list[str] | None = None) -> Config:
    """A config from a YAML file (or the defaults), with `--set` overrides applied."""
    values = read_yaml(path) if path else {}
    if path:
        try:
            config_from_dict(values)  # a mistake in the file is reported with its path
        except ArithlabError as err:
            raise ArithlabError(f"{path}: {err}") from None
    return config_from_dict(merge(values, parse_overrides(overrides or [])))
