"""Datasets: the training, validation and test problems of a run, and problem files.

Problem files hold one problem a line in the study's text form (`686+753=1439`,
`sin(0.5)=0.4794`: a function's answer is its true value cut to 4 decimals; the answer may
be left off). Generated splits are disjoint by construction: the training set
is drawn first, then the test and validation sets from their own seeded streams, skipping
every problem already taken.

Text mixing (the study's Shakespeare runs): a text file, its last share held out for
perplexity, the rest cut into chunks that are interleaved with the training samples in
one stream (`mix_text`).
"""

from __future__ import annotations

import hashlib
import os
import random
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from arithlab import sampling
from arithlab.config import DataConfig
from arithlab.errors import ArithlabError
from arithlab.folders import write_atomic
from arithlab.formats import Format, get_format
from arithlab.tasks import Problem, operation, read_problem

# Distinct seeds for the streams of each split, so that they never coincide.
_TEST_STREAM, _VAL_STREAM, _SHOT_STREAM = 1_000_003, 2_000_003, 3_000_017


@dataclass
class Splits:
    train: list[Problem]
    validation: list[Problem]
    test: list[Problem]
    # A second test set from data.extra_test_file (e.g. stratified by operand lengths),
    # scored apart at the end of training.
    extra_test: list[Problem] = field(default_factory=list)


def read_problems(path: Path) -> list[Problem]:
    """Problems of a file; a line that is not a problem, or states a wrong answer, is an
    error naming the file, the line number and the line."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a byte order mark is not a problem
    except OSError as err:
        raise ArithlabError(f"{path}: cannot read problem file ({err.strerror})") from None
    except UnicodeDecodeError:
        raise ArithlabError(f"{path}: not a text file") from None
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            problems.append(read_problem(line))
        except ValueError as err:
            raise ArithlabError(f"{path}:{number}: {err}: {line!r}") from None
    if not problems:
        raise ArithlabError(f"{path}: no problems in file")
    return problems


def write_problems(path: Path, problems: list[Problem]) -> None:
    write_atomic(Path(path), "".join(f"{p.line}\n" for p in problems))


def _draw(symbol: str, how: str, digits: int, n: int, seed: int, avoid: set[Problem], excluded=()) -> list[Problem]:
    if how == "balanced":
        # Draw a few extra so that dropping the problems to avoid still leaves n.
        pool = sampling.balanced(symbol, digits, n + len(avoid), seed, excluded)
        return [p for p in pool if p not in avoid][:n]
    return sampling.take_distinct(sampling.uniform(symbol, digits, seed), n, avoid, excluded)


def _shares(cfg: DataConfig, count: int) -> list[float]:
    if not cfg.shares:
        return [1 / count] * count
    return [share / sum(cfg.shares) for share in cfg.shares]


def _by_lengths(cfg: DataConfig, symbols: list[str]) -> Splits:
    """Training and validation operands of the lengths `cfg.lengths`; a test with every
    pair of `cfg.test_lengths` (default: the training lengths) in equal numbers, short of
    that only in cells with fewer new problems (1 digit by 1 digit has 100 in all)."""
    sizes = [round(cfg.n_train * share) for share in _shares(cfg, len(symbols))]
    train = [
        problem
        for symbol, size in zip(symbols, sizes)
        for problem in sampling.take_distinct(
            sampling.of_lengths(symbol, cfg.lengths, cfg.lengths, cfg.seed), size, set(), cfg.exclude
        )
    ]
    used = set(train)
    test_lengths = cfg.test_lengths or cfg.lengths
    per_cell = -(-cfg.n_test // len(test_lengths) ** 2)
    test = by_length_cells(symbols, test_lengths, per_cell, cfg.seed + _TEST_STREAM, used)
    used |= set(test)
    validation = [
        problem
        for symbol in symbols
        for problem in sampling.take_distinct(
            sampling.of_lengths(symbol, cfg.lengths, cfg.lengths, cfg.seed + _VAL_STREAM), cfg.n_val, used, partial=True
        )
    ]
    return Splits(train, validation, test)


def by_length_cells(
    symbols: list[str], lengths: list[int], per_cell: int, seed: int, avoid: set[Problem]
) -> list[Problem]:
    """`per_cell` distinct problems for every (digits of a, digits of b) pair of `lengths`,
    none in `avoid`; fewer only in a cell that runs out of new problems (1 digit by 1
    digit has 100 in all)."""
    return [
        problem
        for symbol in symbols
        for a in lengths
        for b in lengths
        for problem in sampling.take_distinct(
            sampling.of_lengths(symbol, [a], [b], seed), per_cell, avoid, partial=True
        )
    ]


def length_test(configs: list[DataConfig], per_cell: int, seed: int) -> list[Problem]:
    """A test set stratified by operand lengths for runs of these data configs (a sweep's
    points): every length pair up to the largest `digits` (or of `lengths`), none of the
    problems in any config's training set, so that every run is scored on the same file."""
    trained: set[Problem] = set()
    symbols: list[str] = []
    lengths: set[int] = set()
    # The file being made is not read (a sweep may already name it as its extra test file);
    # points that differ only in training share data.
    configs = [replace(c, extra_test_file=None) for c in configs]
    for cfg in {repr(c): c for c in configs}.values():
        trained.update(build_splits(cfg).train)
        symbols += [operation(name).symbol for name in (cfg.operations or [cfg.operation])]
        lengths.update(cfg.lengths or range(1, cfg.digits + 1))
    return by_length_cells(list(dict.fromkeys(symbols)), sorted(lengths), per_cell, seed, trained)


def build_splits(cfg: DataConfig) -> Splits:
    symbols = [operation(name).symbol for name in (cfg.operations or [cfg.operation])]
    splits = _by_lengths(cfg, symbols) if cfg.lengths else _by_digits(cfg, symbols)
    if cfg.extra_test_file:
        splits.extra_test = read_problems(Path(cfg.extra_test_file))
        _check_unseen(cfg.extra_test_file, splits.extra_test, set(splits.train))
    fmt = get_format(cfg.format)
    for problem in (*splits.train, *splits.test, *splits.extra_test):
        fmt.check(problem)
    return splits


def _check_unseen(path: str, problems: list[Problem], train: set[Problem]) -> None:
    shared = train.intersection(problems)
    if shared:
        example = min(shared).question
        raise ArithlabError(f"{path}: {len(shared)} test problems are also in the training set (e.g. {example})")


def _by_digits(cfg: DataConfig, symbols: list[str]) -> Splits:
    """Operands of 1..`digits` digits (balanced or uniform), or the problem files."""
    if cfg.train_file:
        train = read_problems(Path(cfg.train_file))
    else:
        sizes = [round(cfg.n_train * share) for share in _shares(cfg, len(symbols))]
        train = [
            problem
            for symbol, size in zip(symbols, sizes)
            for problem in _draw(symbol, cfg.sampling, cfg.digits, size, cfg.seed, set(), cfg.exclude)
        ]
    used = set(train)
    test_digits = cfg.test_digits or cfg.digits
    if cfg.test_file:
        test = read_problems(Path(cfg.test_file))
        _check_unseen(cfg.test_file, test, used)
    else:
        test = [
            problem
            for symbol in symbols
            for problem in _draw(symbol, cfg.test_sampling, test_digits, cfg.n_test, cfg.seed + _TEST_STREAM, used)
        ]
    used |= set(test)
    return Splits(train, _validation(cfg, symbols, test_digits, used), test)


def _validation(cfg: DataConfig, symbols: list[str], digits: int, avoid: set[Problem]) -> list[Problem]:
    how = cfg.val_sampling or cfg.test_sampling
    if how == "lengths":
        lengths = list(range(1, digits + 1))
        return by_length_cells(symbols, lengths, -(-cfg.n_val // len(lengths) ** 2), cfg.seed + _VAL_STREAM, avoid)
    return [p for symbol in symbols for p in _draw(symbol, how, digits, cfg.n_val, cfg.seed + _VAL_STREAM, avoid)]


def _histogram(values) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(values).items(), key=lambda kv: (kv[0] is None, kv[0]))}


def describe(splits: Splits, fmt_name: str, excluded: list[int]) -> dict:
    """data.json: sizes, overlaps between splits (0 by construction), histograms."""
    fmt = get_format(fmt_name)
    train, val, test = set(splits.train), set(splits.validation), set(splits.test)
    samples = [fmt.render(p) for p in splits.train]
    excluded_set = set(excluded)
    return {
        "sizes": {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)},
        "distinct_train": len(train),
        "overlap": {
            "train_test": len(train & test),
            "train_validation": len(train & val),
            "validation_test": len(val & test),
        },
        "excluded_numbers": sorted(excluded_set),
        "train_uses_excluded": sum(1 for p in splits.train if excluded_set.intersection(p.operands)),
        "train_by_operation": _histogram(p.operation.name for p in splits.train),
        "train_by_carries": _histogram(p.carries for p in splits.train),
        "train_by_digits": _histogram(p.digits for p in splits.train),
        "test_by_carries": _histogram(p.carries for p in splits.test),
        "test_by_digits": _histogram(p.digits for p in splits.test),
        "mean_sample_chars": sum(map(len, samples)) / max(len(samples), 1),
    }


# --- text mixed with the arithmetic ----------------------------------------------------


@dataclass
class Text:
    """A text file cut into its training part and its held-out part (for perplexity)."""

    path: str
    train: str
    heldout: str
    sha256: str

    @property
    def whole(self) -> str:
        return self.train + self.heldout


def read_text(cfg: DataConfig) -> Text:
    """`data.text_file`, split as `data.text_heldout` says; a missing, unreadable or empty
    file is an error naming it."""
    path = Path(cfg.text_file).expanduser()
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8").replace("\r\n", "\n")
    except OSError as err:
        hint = "; arithlab data text --download fetches it" if path == shakespeare_path() else ""
        raise ArithlabError(f"{path}: cannot read text file ({err.strerror}){hint}") from None
    except UnicodeDecodeError:
        raise ArithlabError(f"{path}: not a UTF-8 text file") from None
    if not text.strip():
        raise ArithlabError(f"{path}: text file is empty")
    heldout = max(2, round(len(text) * cfg.text_heldout))
    if len(text) - heldout < 1:
        raise ArithlabError(f"{path}: text file too short ({len(text)} characters) to hold some out")
    cut = len(text) - heldout
    return Text(str(path), text[:cut], text[cut:], hashlib.sha256(raw).hexdigest())


def text_chunks(text: str, size: int) -> list[str]:
    """`text` in consecutive chunks of `size` characters (the last one may be shorter)."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def sample_blocks(groups: list[list[str]], blocks: int) -> list[str]:
    """`blocks` blocks of samples: block j holds group[j*n//blocks : (j+1)*n//blocks] of
    each group (each format's samples) in turn."""
    return [
        "".join("".join(group[j * len(group) // blocks : (j + 1) * len(group) // blocks]) for group in groups)
        for j in range(blocks)
    ]


def mix_text(groups: list[list[str]], chunks: list[str], per_block: int, blocks: int) -> str:
    """The training stream of a text-mixed run, as the study builds it.

    `blocks` blocks, each: `per_block` text chunks (chunk k of the whole stream is
    chunks[k % len(chunks)], so the text reads on from block to block and starts again
    when it runs out), a newline, then the block's share of the samples of each group
    (`sample_blocks`). Every sample thus follows a newline, as in the arithmetic-only stream.
    """
    parts = []
    for j, samples in enumerate(sample_blocks(groups, blocks)):
        parts.extend(chunks[(j * per_block + i) % len(chunks)] for i in range(per_block))
        parts.append("\n")
        parts.append(samples)
    return "".join(parts)


def stream_formats(cfg: DataConfig) -> list[Format]:
    """The formats a stream holds: data.format, then data.mix_formats."""
    return [get_format(name) for name in (cfg.format, *cfg.mix_formats)]


def training_stream(cfg: DataConfig, problems: list[Problem], text: Text | None = None) -> str:
    """What the `stream` objective trains on: the samples joined after a newline (with
    mix_formats, block by block), or, with a text, the samples mixed with it."""
    groups = [[fmt.render(p) for p in problems] for fmt in stream_formats(cfg)]
    if text is None:
        return "\n" + "".join(sample_blocks(groups, cfg.text_blocks if cfg.mix_formats else 1))
    return mix_text(groups, text_chunks(text.train, cfg.text_chunk), cfg.text_chunks, cfg.text_blocks)


def describe_text(cfg: DataConfig, text: Text, stream: str, vocab_size: int) -> dict:
    """data.json's `text` section: where the text came from and how much of the stream it is."""
    chunks = text_chunks(text.train, cfg.text_chunk)
    used = cfg.text_chunks * cfg.text_blocks
    text_chars = sum(len(chunks[k % len(chunks)]) for k in range(used))
    return {
        "file": text.path,
        "sha256": text.sha256,
        "train_chars": len(text.train),
        "heldout_chars": len(text.heldout),
        "chunks": len(chunks),
        "chunks_in_stream": used,
        "text_passes": used / len(chunks),
        "stream_chars": len(stream),
        "text_share": text_chars / max(len(stream), 1),
        "vocab_size": vocab_size,
    }


SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"


def cache_dir() -> Path:
    """Where downloads are kept: $XDG_CACHE_HOME/arithlab, or ~/.cache/arithlab."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "arithlab"


def shakespeare_path() -> Path:
    return cache_dir() / "tinyshakespeare.txt"


def download_shakespeare(timeout: float = 30.0) -> Path:
    """Karpathy's tiny-shakespeare in the cache (fetched once); without network, an error
    that says which file to put where and pass instead."""
    dest = shakespeare_path()
    if dest.is_file() and dest.stat().st_size:
        return dest
    try:
        with urllib.request.urlopen(SHAKESPEARE_URL, timeout=timeout) as response:
            data = response.read()
    except (OSError, ValueError) as err:  # URLError and timeouts are OSErrors
        reason = getattr(err, "reason", None) or err
        raise ArithlabError(
            f"cannot download {SHAKESPEARE_URL} ({reason}); get that file another way, save it as {dest} "
            f"and pass --set data.text_file={dest} (any UTF-8 text file will do)"
        ) from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return dest


# --- few-shot prompts -------------------------------------------------------------------


@dataclass
class ShotSet:
    """One set of few-shot examples; k-shot prompts use the first k."""

    examples: list[Problem]
    wrong: list[Problem] | None = None  # noisy: the problem whose answer each example is given
    text: str | None = None  # text variant: a line of the held-out text, before the examples


def shot_sets(
    train: list[Problem],
    shots: int,
    sets: int,
    fmt: Format,
    variant: str = "plain",
    heldout: str | None = None,
    seed: int = 0,
) -> list[ShotSet]:
    """`sets` sets of `shots` distinct training problems, drawn with `seed` (the same
    problems for every variant); noisy sets pair each with another problem whose answer
    differs, text sets with a non-empty line of the held-out text. (That shots >= 0 and
    sets >= 1 is a rule of config.check.)"""
    pool = sorted(set(train))
    if len(pool) < shots:
        raise ArithlabError(f"few-shot: {shots} shots need {shots} training problems, the run has {len(pool)}")
    rng = random.Random(seed + _SHOT_STREAM)
    result = [ShotSet(rng.sample(pool, shots)) for _ in range(sets)]
    if variant == "noisy":
        noise = random.Random(seed + _SHOT_STREAM + 1)
        for shot_set in result:
            shot_set.wrong = [_wrong_partner(p, pool, fmt, noise) for p in shot_set.examples]
    elif variant == "text":
        lines = [line for line in (heldout or "").splitlines() if line.strip()]
        if not lines:
            raise ArithlabError("few-shot variant text needs a text-mixed run (its held-out text has no lines)")
        lines_rng = random.Random(seed + _SHOT_STREAM + 2)
        for shot_set in result:
            shot_set.text = lines_rng.choice(lines)
    return result


def _wrong_partner(problem: Problem, pool: list[Problem], fmt: Format, rng: random.Random) -> Problem:
    for _ in range(1000):
        other = rng.choice(pool)
        if fmt.target(other) != fmt.target(problem):
            return other
    raise ArithlabError("few-shot variant noisy: the training problems all have the same answer")


def example_text(fmt: Format, problem: Problem, wrong: Problem | None = None) -> str:
    """One solved example, as the format renders it as a training sample; with `wrong`, the
    example's prompt followed by the rest of `wrong`'s sample (a wrong answer)."""
    if wrong is None:
        return fmt.render(problem)
    return fmt.prompt(problem) + fmt.completion(wrong)


def shot_prefix(fmt: Format, shot_set: ShotSet, k: int) -> str:
    """What a k-shot prompt holds between the newline that starts every prompt and the
    query's own prompt: the text line and a newline (text variant), then the first k
    examples, each a whole sample ending in its newline, as in stream training."""
    wrong = shot_set.wrong or [None] * len(shot_set.examples)
    lead = "" if shot_set.text is None else shot_set.text + "\n"
    return lead + "".join(example_text(fmt, p, w) for p, w in zip(shot_set.examples[:k], wrong[:k]))
