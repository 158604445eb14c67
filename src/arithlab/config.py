"""Run configuration: dataclasses, read from YAML, overridden with dotted `key=value`s.

The dataclasses hold every key and its default; a key with a fixed set of values is a
`Literal` (those a registry defines, such as position schemes, come from the registry).
Every key is checked: an unknown key or a value of the wrong type is an ArithlabError
that names the key, the value and what is allowed, and `check` holds every rule that
needs nothing but the config (values, ranges, keys that tie). Rules that need the data
(block_size against the longest sample) are build.resolve's.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from arithlab.errors import ArithlabError
from arithlab.folders import write_atomic
from arithlab.formats import FORMATS, get_format
from arithlab.positions import PLACE_TABLES, POSITIONS
from arithlab.sampling import SAMPLINGS
from arithlab.tasks import operation
from arithlab.trackers import tracker

# Named model sizes; every dimension can still be set on its own in a run's config.
PRESETS: dict[str, dict] = {
    # The quickstart's model (0.24M parameters): learns 3-digit addition in minutes on 2
    # cores; 96 wide learned as fast per step as 128 wide, at 0.6x the cost of a step.
    "small": dict(n_layer=2, n_head=4, n_embd=96, dropout=0.0),
    "tiny": dict(n_layer=1, n_head=2, n_embd=32, dropout=0.0),
    # The study's NanoGPT: 10.6M parameters.
    "nanogpt": dict(n_layer=6, n_head=6, n_embd=384, dropout=0.2),
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, dropout=0.0),
}

# Choices a registry defines: an entry there is a choice here.
Sampling = Literal[SAMPLINGS]
Preset = Literal[tuple(PRESETS)]
PositionScheme = Literal[tuple(POSITIONS)]
PlaceTable = Literal[tuple(PLACE_TABLES)]


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
    sampling: Sampling = "balanced"
    n_val: int = 500  # validation problems, evaluated during training
    n_test: int = 10000
    test_digits: int | None = None  # default: digits
    test_sampling: Sampling = "uniform"
    # Validation: as the test (None), or balanced | uniform | lengths: the same number of
    # problems for every (digits of a, digits of b) pair, so that stopping at
    # train.target_accuracy waits for the rare pairs (a uniform set has ~1% 1+3-digit).
    val_sampling: Literal[(*SAMPLINGS, "lengths")] | None = None
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
    preset: Preset = "small"
    n_layer: int | None = None  # None: the preset's
    n_head: int | None = None
    n_embd: int | None = None
    dropout: float | None = None
    bias: bool = True
    # The standard deviation of the random initial weights (GPT-2's 0.02; the residual
    # projections get it / sqrt(2 n_layer)). Larger starts leave the early loss plateau
    # sooner and more reliably on the small model (docs/results.md).
    init_std: float = 0.02
    block_size: int | None = None  # None: fits the longest sample (answer), or 256 (stream)
    # learned (the study's) | none | abacus | coupled: the last two embed each digit's place
    # in its number and need numbers written least significant digit first (reverse_all).
    positions: PositionScheme = "learned"
    # abacus / coupled: a learned embedding per place, or fixed sinusoids of the place (the
    # same function at every place, so places never trained together still relate by distance),
    # or `relative`: no embedding, a learned attention bias per difference of places; `local`:
    # the same, and digits farther apart than 4 places do not attend to each other
    # (positions.py).
    place_table: PlaceTable = "learned"
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
    objective: Literal["answer", "packed", "stream"] = "answer"  # batches.py
    loss_on: Literal["answer", "sample"] = "answer"  # what the answer and packed losses cover
    # How far training rows are drawn evenly over operand-length pairs (answer and packed
    # objectives): a pair of n samples comes up in proportion to n^(1-x); false is 0 (the
    # data's own mix), true is 1 (every pair equally often). Without it the rare pairs (1+3
    # digits: 1% of a balanced set) are memorized, not learned; at 1 the common 3+3-digit
    # pair drops from 75% of the rows to 11% and learns late (docs/results.md, the recipe).
    balance_lengths: bool | float = 0.5
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
    # on this many evaluations in a row: one lucky evaluation in the middle of the
    # transition (the rate still high) can be 99% on validation and 97% on test.
    target_patience: int = 1
    # Test (and save) the weights of the best validation score, the latest of equal ones,
    # not the last step's: late in a run a rare length pair can come and go between two
    # evaluations (99% validation, then 89% at the last one).
    keep_best: bool = False
    max_minutes: float | None = None  # stop (evaluate, save, test) once training has run this long
    seed: int = 0  # fixes initialization, batch order and dropout
    # Shift each training row's position ids by a random 0..position_offset (0: off);
    # evaluation uses no shift. Keeps the GPT-2 architecture, helps operands of unequal length.
    position_offset: int = 0
    # In training, a random gap of 0..position_gaps in the position ids before each number
    # of the prompt and before the answer (the answer objective and loss, learned
    # positions; 0: off; evaluation has no gaps).
    # Every lookup anchored on a number's start or on the answer's position then misses,
    # so the model finds a digit from the end of its number: the one rule right for
    # every pair of operand lengths.
    position_gaps: int = 0
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    threads: int | None = None  # CPU threads; None: the idle cores, up to devices.THREADS_CAP
    compile: bool = False
    # Trackers every metrics.jsonl line also goes to (trackers.TRACKERS: tensorboard, wandb;
    # each its own extra), and the group a tracker run joins (a sweep sets its name).
    log_to: list[str] = field(default_factory=list)
    log_group: str | None = None


@dataclass
class EvalConfig:
    batch_size: int = 1000
    decoding: Literal["greedy", "sample"] = "greedy"  # sample: the study's temperature and top-k
    temperature: float = 0.8
    top_k: int = 200
    # The reference code's prompts lack the newline every training sample follows; True
    # reproduces that pitfall (docs/formats.md), only for comparison.
    reference_prompt: bool = False
    # Few-shot evaluation (fewshot.json; at the end of training where shots > 0, and by
    # `arithlab eval RUN --shots K`): 0..shots solved training examples before each query,
    # shot_sets example sets, on the first shot_n test problems. Variants: plain (examples
    # in the run's format), scratchpad (examples and query in shot_format, by default
    # simplified), noisy (examples with wrong answers), text (a line of the held-out text first).
    shots: int = 0
    shot_sets: int = 5
    shot_variant: Literal["plain", "scratchpad", "noisy", "text"] = "plain"
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
        write_atomic(Path(path), yaml.safe_dump(self.to_dict(), sort_keys=False))


def _type_name(tp) -> str:
    if typing.get_origin(tp) is Literal:  # a choice among values of one type
        tp = type(typing.get_args(tp)[0])
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "null")


def _coerce(key: str, value, tp):
    """`value` as type `tp`, or an ArithlabError naming the key. A Literal's type is its
    values' (str); which values it allows is a rule of `check`."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return _coerce(key, value, type(typing.get_args(tp)[0]))
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
    return cls(**kwargs)


def config_from_dict(values: dict, checked: bool = True) -> Config:
    """The config `values` describe, their keys and types checked, and (`checked`) every
    rule of `check`."""
    cfg = _build(Config, values, "")
    if checked:
        check(cfg)
    return cfg


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
        try:
            put(nested, key.strip(), value)
        except ValueError as err:
            raise ArithlabError(f"--set {pair!r}: {err} is not a section") from None
    return nested


def put(nested: dict, key: str, value) -> None:
    """Set dotted `key` ("train.lr") of the nested dict to `value`, making its sections; a
    ValueError naming the part of the key that holds a value where a section should be."""
    node = nested
    *sections, name = key.split(".")
    for part in sections:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(part)
    node[name] = value


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
        raise ArithlabError(f"{path}: empty; expected a mapping of config sections")
    if not isinstance(values, dict):
        raise ArithlabError(f"{path}: expected a mapping of config sections")
    return values


def read_config_file(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """A config file's values over those of the config its `base:` names (a path relative
    to it, which may have a base of its own), so that a config which differs from another
    in a few keys says only those. Each file is checked as it resolves, and a bad key or
    value is reported with the path of the file that set it."""
    values = read_yaml(path)
    base = values.pop("base", None)
    if base is not None:
        if not isinstance(base, str) or not base:
            raise ArithlabError(f"{path}: base: expected the path of a config file, relative to this one")
        base_path, chain = Path(path).parent / base, (*chain, Path(path).resolve())
        if base_path.resolve() in chain:
            raise ArithlabError(f"{path}: base: {base} makes a loop (a config cannot be its own base)")
        values = merge(read_config_file(base_path, chain), values)
    try:
        check_values(config_from_dict(values, checked=False))
    except ArithlabError as err:
        raise ArithlabError(f"{path}: {err}") from None
    return values


def load_config(path: Path | None = None, overrides: list[str] | None = None) -> Config:
    """A config from a YAML file (or the defaults), with `--set` overrides applied."""
    values = read_config_file(path) if path else {}
    return config_from_dict(merge(values, parse_overrides(overrides or [])))


# --- the rules a config must follow (check) ----------------------------------------------

# Valid values of every numeric key: (test, what the error says they must be). A list's
# test applies to each of its items; None (where a key allows it) is always valid.
COUNT = (lambda v: v >= 1, "at least 1")
NATURAL = (lambda v: v >= 0, "at least 0")
POSITIVE = (lambda v: 0 < v < math.inf, "a finite number above 0")
NON_NEGATIVE = (lambda v: 0 <= v < math.inf, "a finite number, at least 0")
PROBABILITY = (lambda v: 0 <= v <= 1, "from 0 to 1")
BELOW_ONE = (lambda v: 0 <= v < 1, "at least 0 and below 1")
RANGES = {
    "data.digits": COUNT,
    "data.n_train": COUNT,
    "data.n_val": COUNT,
    "data.n_test": COUNT,
    "data.test_digits": COUNT,
    "data.exclude": (NATURAL[0], "numbers of at least 0"),
    "data.shares": (NON_NEGATIVE[0], "finite numbers of at least 0"),
    "data.lengths": (COUNT[0], "lengths of at least 1 digit"),
    "data.test_lengths": (COUNT[0], "lengths of at least 1 digit"),
    "data.seed": NATURAL,
    "data.text_chunk": COUNT,
    "data.text_chunks": COUNT,
    "data.text_blocks": COUNT,
    "data.text_heldout": (lambda v: 0 < v < 1, "between 0 and 1"),
    "model.n_layer": COUNT,
    "model.n_head": COUNT,
    "model.n_embd": COUNT,
    "model.dropout": BELOW_ONE,
    "model.init_std": POSITIVE,
    "model.block_size": COUNT,
    "model.lora_rank": (NATURAL[0], "at least 0 (0: fine-tune every weight)"),
    "model.lora_alpha": POSITIVE,
    "model.lora_dropout": BELOW_ONE,
    "train.batch_size": COUNT,
    "train.max_iters": COUNT,
    "train.lr": POSITIVE,
    "train.min_lr_ratio": PROBABILITY,
    "train.warmup_iters": NATURAL,
    "train.weight_decay": NON_NEGATIVE,
    "train.beta1": BELOW_ONE,
    "train.beta2": BELOW_ONE,
    "train.grad_clip": NON_NEGATIVE,
    "train.eval_interval": COUNT,
    "train.target_accuracy": PROBABILITY,
    "train.target_patience": COUNT,
    "train.balance_lengths": PROBABILITY,
    "train.max_minutes": NON_NEGATIVE,
    "train.seed": NATURAL,
    "train.position_offset": NATURAL,
    "train.position_gaps": NATURAL,
    "train.threads": COUNT,
    "eval.batch_size": COUNT,
    "eval.temperature": POSITIVE,
    "eval.top_k": COUNT,
    "eval.shots": NATURAL,
    "eval.shot_sets": COUNT,
    "eval.shot_n": COUNT,
}
INIT_SCHEMES = ("hf", "run")


def _literal_values(tp) -> tuple:
    """The values of a Literal type, or of an optional one (`Literal[...] | None`); () else."""
    for option in (tp, *typing.get_args(tp)):
        if typing.get_origin(option) is Literal:
            return typing.get_args(option)
    return ()


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig}
# The allowed values of every Literal key (None too, where the key is optional):
# {"train.objective": ("answer", "packed", "stream"), ...}.
CHOICES = {
    f"{section}.{name}": _literal_values(tp)
    for section, cls in SECTIONS.items()
    for name, tp in typing.get_type_hints(cls).items()
    if _literal_values(tp)
}


def get(cfg: Config, key: str):
    """The value of dotted key `key` ("train.lr") of `cfg`."""
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def check(cfg: Config) -> None:
    """Every rule of a config that needs nothing but the config: choices, names of formats
    and operations, ranges, and the rules that tie keys together. An ArithlabError naming
    the key where one is broken."""
    check_values(cfg)
    _check_data(cfg)
    _check_model(cfg)


def check_values(cfg: Config) -> None:
    """The rules of `check` that concern one key at a time."""
    for key, allowed in CHOICES.items():
        value = get(cfg, key)
        if value is not None and value not in allowed:  # None: only where the key takes it (_coerce)
            raise ArithlabError(f"config key {key}: {value!r} is not one of {', '.join(allowed)}")
    _check_names(cfg)
    for key, (valid, what) in RANGES.items():
        value = get(cfg, key)
        if value is not None and not all(map(valid, value if isinstance(value, list) else [value])):
            raise ArithlabError(f"config key {key}: {value} must be {what}")


def _check_names(cfg: Config) -> None:
    named = [
        ("data.operation", operation, [cfg.data.operation]),
        ("data.operations", operation, cfg.data.operations),
        ("data.format", get_format, [cfg.data.format]),
        ("data.mix_formats", get_format, cfg.data.mix_formats),
        ("eval.shot_format", get_format, [cfg.eval.shot_format] if cfg.eval.shot_format else []),
        ("train.log_to", tracker, cfg.train.log_to),
    ]
    for key, lookup, names in named:
        for name in names:
            try:
                lookup(name)
            except ArithlabError as err:
                raise ArithlabError(f"config key {key}: {err}") from None


def _check_data(cfg: Config) -> None:
    d = cfg.data
    count = len(d.operations) or 1
    if d.shares and (len(d.shares) != count or not sum(d.shares)):
        raise ArithlabError(
            f"config key data.shares: {d.shares} must give one non-negative share per operation ({count})"
        )
    if d.val_sampling == "lengths" and any(operation(name).interval for name in d.operations or [d.operation]):
        raise ArithlabError("config key data.val_sampling: lengths is for operations on integers, not functions")
    if d.lengths and (d.train_file or d.test_file):
        raise ArithlabError("config keys data.lengths and data.train_file/test_file: give one or the other")
    for key in ("text_file", "mix_formats"):
        if getattr(d, key) and cfg.train.objective != "stream":
            raise ArithlabError(
                f"config key data.{key}: mixing is for the stream objective; set train.objective: stream"
            )
    if cfg.eval.shots > 0 and cfg.eval.shot_variant == "text" and not d.text_file:
        raise ArithlabError("few-shot variant text needs a text-mixed run (data.text_file); this run has no text")


def _either(names) -> str:
    return " or ".join(names)


def _check_model(cfg: Config) -> None:
    m = cfg.model
    if POSITIONS[m.positions].digit_places and not get_format(cfg.data.format).digits_from_least:
        formats = _either(name for name, fmt in FORMATS.items() if fmt.digits_from_least)
        raise ArithlabError(
            f"config key model.positions: {m.positions} places digits from the least significant one and "
            f"needs data.format {formats}, not {cfg.data.format}"
        )
    if PLACE_TABLES[m.place_table].places_only and not POSITIONS[m.positions].digit_places:
        schemes = _either(name for name, scheme in POSITIONS.items() if scheme.digit_places)
        raise ArithlabError(
            f"config key model.place_table: {m.place_table} is for {schemes} places, not {m.positions} positions"
        )
    t = cfg.train
    if t.position_gaps and (m.positions, t.objective, t.loss_on) != ("learned", "answer", "answer"):
        raise ArithlabError(
            f"config key train.position_gaps: {t.position_gaps} needs model.positions: learned, train.objective: "
            f"answer and train.loss_on: answer (not {m.positions}, {t.objective}, {t.loss_on}): the gaps go "
            "between the prompt's numbers and before the answer of one sample a row"
        )
    if init_of(cfg)[0] == "hf":
        # A pretrained GPT-2 brings its own learned positions: one shift a row at most. The
        # gaps and digit places find digits by their tokens, which its tokenizer may merge.
        own = f"needs arithlab's own model, not model.init: {m.init}"
        if m.positions != "learned":
            raise ArithlabError(f"config key model.positions: {m.positions} {own}")
        if t.position_gaps:
            raise ArithlabError(f"config key train.position_gaps: {t.position_gaps} {own}")
    dims = with_preset(m)
    if not init_of(cfg)[0] and dims.n_embd % dims.n_head:  # a pretrained start brings its own dimensions
        raise ArithlabError(f"model: n_embd {dims.n_embd} is not a multiple of n_head {dims.n_head}")
    if init_of(cfg)[0] != "hf":
        if m.lora_rank:
            raise ArithlabError(f"config key model.lora_rank: {m.lora_rank} needs model.init: hf:PATH_OR_NAME")
        if m.digit_spaces:
            raise ArithlabError("config key model.digit_spaces: true needs model.init: hf:PATH_OR_NAME")


def with_preset(m: ModelConfig) -> ModelConfig:
    """The model section with every dimension it leaves unset (None) taken from its preset."""
    return dataclasses.replace(m, **{key: value for key, value in PRESETS[m.preset].items() if getattr(m, key) is None})


def init_of(cfg: Config) -> tuple[str, str]:
    """("", "") for a random start, else (scheme, target) of `model.init`."""
    init = cfg.model.init
    if not init:
        return "", ""
    scheme, sep, target = init.partition(":")
    if not sep or scheme not in INIT_SCHEMES or not target:
        raise ArithlabError(f"config key model.init: {init!r} is not hf:PATH_OR_NAME or run:PATH")
    return scheme, target


# --- resuming: what may change -------------------------------------------------------------

# Keys that say how a run executes, not what it trains: a resumed run may change them.
EXECUTION_KEYS = (
    "train.threads",
    "train.device",
    "train.compile",
    "train.max_minutes",
    "train.log_to",
    "train.log_group",
    "eval.batch_size",
)
# Of those, the ones whose change leaves the floating-point results as they were.
SAME_RESULTS = ("train.max_minutes", "train.log_to", "train.log_group")


def resume_overrides(pairs: list[str]) -> dict:
    """`--set` pairs for a resumed run, as a nested dict; a key that changes what is trained
    is an error naming it."""
    overrides = parse_overrides(pairs)
    for key in _flat(overrides):
        if key not in EXECUTION_KEYS:
            raise ArithlabError(
                f"--resume --set {key}: it changes what is trained; a resumed run may change only "
                f"{', '.join(EXECUTION_KEYS)}"
            )
    return overrides


def _flat(nested: dict, prefix: str = "") -> dict:
    """{"train": {"lr": 1}} as {"train.lr": 1}."""
    flat = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def training_differences(recorded: Config, given: Config) -> list[str]:
    """`train.position_offset: 16, now 0` for each key, other than the execution keys, that
    `given` sets otherwise than the run's `recorded` config: what makes them two runs. A
    run records the values it filled in (the preset's dimensions, block_size); `given`
    leaving them unset (None) is no difference."""
    before = _flat(recorded.to_dict())
    now = _flat(dataclasses.replace(given, model=with_preset(given.model)).to_dict())
    return [
        f"{key}: {before[key]!r}, now {now[key]!r}"
        for key in before
        if key not in EXECUTION_KEYS and now[key] is not None and before[key] != now[key]
    ]


def continued(recorded: Config, given: Config) -> tuple[Config, list[str]]:
    """A run's config `recorded`, with the execution keys `given` sets otherwise (threads:
    None keeps the recorded count); and those keys."""
    values = recorded.to_dict()
    changed = []
    for key in EXECUTION_KEYS:
        new = get(given, key)
        if new != get(recorded, key) and not (key == "train.threads" and new is None):
            section, name = key.split(".")
            values[section][name] = new
            changed.append(key)
    return config_from_dict(values), changed
