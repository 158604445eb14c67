"""Evaluation: prompts -> batched decoding with the KV cache -> parse -> score.

Prompts are grouped by length, so a batch never needs padding and every row's positions
are exactly those of training. Scores: exact match overall, by the longer operand's digit
count, by number of carries and by the operands' lengths. Exact match is against the
format's own target (what its sample states: the detailed sine's answer is its
scratchpad's last value); for sin and sqrt the summary adds the study's tolerance
accuracies, |answer - true value| <= eps. Decoding is greedy, or sampled as the study's
evaluation (`decoding_options`); few-shot evaluation puts solved examples before each
prompt (`fewshot_eval`).

What evaluation needs of a model and a tokenizer is named by `LanguageModel` and
`Tokenizer`: our GPT and CharTokenizer are one, and so are hf.HFModel and hf.HFTokenizer.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from decimal import Decimal
from fractions import Fraction
from itertools import zip_longest
from typing import Any, Protocol, runtime_checkable

import torch

from arithlab.config import Config
from arithlab.data import ShotSet, Splits, example_text, shot_prefix, shot_sets
from arithlab.errors import ArithlabError
from arithlab.formats import Format, get_format
from arithlab.tasks import Problem, number_text


@runtime_checkable
class LanguageModel(Protocol):
    """What evaluation asks of a model: logits, decoding, and the length it can read."""

    config: Any  # with block_size: the context perplexity reads in
    training: bool

    @property
    def max_length(self) -> int | None:
        """The longest sequence the model can read (None: no limit)."""

    def __call__(self, idx: torch.Tensor) -> torch.Tensor: ...

    def generate(self, idx: torch.Tensor, max_new_tokens: int, finished=None, **options) -> torch.Tensor:
        """As model.GPT.generate (`options`: use_cache, temperature, top_k, generator)."""

    def parameters(self) -> Iterator[torch.nn.Parameter]: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...


@runtime_checkable
class Tokenizer(Protocol):
    """What evaluation (and training) asks of a tokenizer."""

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids) -> str: ...

    def ids_containing(self, chars: str) -> list[int]: ...


def decoding_options(cfg: Config) -> dict:
    """The keyword arguments of `generate_answers` that the run's eval section sets."""
    ec = cfg.eval
    sampled = ec.decoding == "sample"
    return dict(
        batch_size=ec.batch_size,
        temperature=ec.temperature if sampled else 0.0,
        top_k=ec.top_k if sampled else None,
        reference_prompt=ec.reference_prompt,
    )


def prompt_text(fmt: Format, problem: Problem, reference_prompt: bool = False, prefix: str = "") -> str:
    """What the model is given: the format's prompt after the newline every sample
    follows in training (without it only in the reference's pitfall mode); few-shot
    prompts put their examples (`prefix`) between that newline and the prompt."""
    return ("" if reference_prompt else "\n") + prefix + fmt.prompt(problem)


def _stopper(fmt: Format, tokenizer: Tokenizer, device):
    stop_ids = torch.tensor(tokenizer.ids_containing(fmt.stop_chars), dtype=torch.long, device=device)
    done: dict[int, bool] = {}

    def finished(new: torch.Tensor) -> torch.Tensor:
        # Only rows that just wrote a stop character can have become complete.
        for row in torch.isin(new[:, -1], stop_ids).nonzero().flatten().tolist():
            if row not in done and fmt.is_complete(tokenizer.decode(new[row].tolist())):
                done[row] = True
        return torch.tensor([done.get(i, False) for i in range(new.size(0))])

    return finished


def _cut(fmt: Format, text: str) -> str:
    """The generated text up to where the answer was complete."""
    for end in range(1, len(text) + 1):
        if text[end - 1] in fmt.stop_chars and fmt.is_complete(text[:end]):
            return text[:end]
    return text


@torch.no_grad()
def generate_answers(
    model: LanguageModel,
    tokenizer: Tokenizer,
    fmt: Format,
    problems: list[Problem],
    batch_size: int = 1000,
    use_cache: bool = True,
    temperature: float = 0.0,
    top_k: int | None = None,
    reference_prompt: bool = False,
    seed: int = 0,
    prefix: str = "",
) -> list[str]:
    """The model's raw output after each problem's prompt, cut where the answer ended."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=device).manual_seed(seed) if temperature > 0 else None
    by_length: dict[int, list[int]] = defaultdict(list)
    encoded = [tokenizer.encode(prompt_text(fmt, p, reference_prompt, prefix)) for p in problems]
    for i, ids in enumerate(encoded):
        by_length[len(ids)].append(i)
    outputs: list[str] = [""] * len(problems)
    for indices in by_length.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            idx = torch.tensor([encoded[i] for i in chunk], device=device)
            budget = max(fmt.max_new_tokens(problems[i]) for i in chunk)
            stop = _stopper(fmt, tokenizer, device)
            new = model.generate(
                idx, budget, stop, use_cache=use_cache, temperature=temperature, top_k=top_k, generator=generator
            )
            for i, row in zip(chunk, new.tolist()):
                outputs[i] = _cut(fmt, tokenizer.decode(row))
    model.train(was_training)
    return outputs


def too_long(
    model: LanguageModel, tokenizer: Tokenizer, fmt: Format, problems: list[Problem], reference_prompt: bool = False
) -> list[int]:
    """Indices of the problems whose prompt and answer are longer than the model can read
    and write (none for a model without length-bound weights)."""
    if model.max_length is None:
        return []
    return [
        i
        for i, p in enumerate(problems)
        if len(tokenizer.encode(prompt_text(fmt, p, reference_prompt) + fmt.completion(p))) > model.max_length
    ]


def _breakdown(pairs: Iterable[tuple[object, bool]], name=str) -> dict[str, dict]:
    groups: dict[object, list[bool]] = defaultdict(list)
    for key, correct in pairs:
        if key is not None:
            groups[key].append(correct)
    return {name(key): {"accuracy": sum(v) / len(v), "n": len(v)} for key, v in sorted(groups.items())}


def operand_lengths(problem: Problem) -> tuple[int, int] | None:
    """(digits of a, digits of b) of an integer problem; None for a function's."""
    return None if problem.is_function else (len(str(problem.a)), len(str(problem.b)))


# The study's tolerances for sine and square root: (summary key, eps).
TOLERANCES = (("within_5e-4", Fraction(5, 10**4)), ("within_5e-3", Fraction(5, 10**3)))


def digit_places(parsed: int | None, answer: int) -> list[tuple[int, bool]]:
    """(place, right) for each digit of the true answer's magnitude, place 1 the units:
    whether the parsed answer has that digit there (an unparsed answer has none)."""
    true = str(abs(answer))[::-1]
    got = str(abs(parsed))[::-1] if parsed is not None else ""
    return [(place, place <= len(got) and got[place - 1] == digit) for place, digit in enumerate(true, 1)]


def first_wrong_line(output: str, reference: str) -> int | None:
    """The number (1: the first) of the first line of `output` that differs from the same
    line of `reference`: the step where a scratchpad went wrong (the lines after it may
    only carry the error on). None where the two are the same."""
    for number, (got, want) in enumerate(zip_longest(output.split("\n"), reference.split("\n")), 1):
        if got != want:
            return number
    return None


def _within(parsed: int | Decimal | None, true: Decimal, eps: Fraction) -> bool:
    """|parsed - true| <= eps, exactly (as fractions: no rounding of long answers)."""
    return parsed is not None and abs(Fraction(parsed) - Fraction(true)) <= eps


def _json_number(value):
    """A Decimal as its exact text (JSON has no exact decimals); ints and None as they are."""
    return number_text(value) if isinstance(value, Decimal) else value


def score(
    fmt: Format, problems: list[Problem], outputs: list[str], excluded: Iterable[int] = ()
) -> tuple[dict, list[dict]]:
    """eval.json's summary and predictions.jsonl's rows for these outputs.

    With `excluded` numbers (never an operand in training), the summary adds the accuracy
    on the problems that use one (`with_excluded`) and on the rest (`without_excluded`).

    Sine and square root problems add, beside `accuracy`, the share of them whose answer is
    within 5e-4 and 5e-3 of the true value cut to 4 decimals (`within_5e-4`, `within_5e-3`),
    and to their rows the format's `target` and those two verdicts; numbers in their rows
    are exact decimal strings. Integer problems give instead `by_place`: the share of
    right digits at each place of the true answer, the units first, whether or not the
    whole answer is right. Multi-line formats (the scratchpads) add to each row the first
    line where the output leaves the reference (`first_wrong_line`), and to the summary how
    many wrong answers go wrong first at each line (`by_first_wrong_line`).
    """
    predictions, tolerance = [], {key: [] for key, _ in TOLERANCES}
    for problem, output in zip(problems, outputs):
        parsed = fmt.parse(output, problem)
        target = fmt.target(problem)
        row = {
            "prompt": fmt.prompt(problem),
            "output": output,
            "parsed": _json_number(parsed),
            "answer": _json_number(problem.answer),
            "correct": parsed == target,
        }
        if not fmt.one_line:
            row["first_wrong_line"] = first_wrong_line(output, fmt.completion(problem))
        if problem.is_function:
            row["target"] = _json_number(target)
            for key, eps in TOLERANCES:
                row[key] = _within(parsed, problem.answer, eps)
                tolerance[key].append(row[key])
        predictions.append(row)
    correct = [p["correct"] for p in predictions]
    summary = {"accuracy": sum(correct) / max(len(correct), 1)}
    if tolerance[TOLERANCES[0][0]]:
        summary.update({key: sum(hits) / len(hits) for key, hits in tolerance.items()})
    summary.update(
        {
            "n": len(correct),
            "correct": sum(correct),
            "by_digits": _breakdown((p.digits, c) for p, c in zip(problems, correct)),
            "by_carries": _breakdown((p.carries, c) for p, c in zip(problems, correct)),
            # Every (digits of a, digits of b) cell, "AxB": the length-generalization heat map.
            "by_lengths": _breakdown(
                ((operand_lengths(p), c) for p, c in zip(problems, correct)), name=lambda key: f"{key[0]}x{key[1]}"
            ),
            # Each digit place of the answer ("1": the units), right or not: which step of
            # the algorithm a model has not learned yet (a plateau is often one place).
            "by_place": _breakdown(
                pair
                for p, row in zip(problems, predictions)
                if not p.is_function
                for pair in digit_places(row["parsed"], p.answer)
            ),
        }
    )
    if not fmt.one_line:
        # How many wrong answers first leave the reference at each line of the scratchpad
        # (a wrong answer always differs from it somewhere).
        lines = Counter(row["first_wrong_line"] for row in predictions if not row["correct"])
        summary["by_first_wrong_line"] = {str(k): lines[k] for k in sorted(lines)}
    if len({p.op for p in problems}) > 1:
        summary["by_operation"] = _breakdown((p.operation.name, c) for p, c in zip(problems, correct))
    excluded = set(excluded)
    if excluded:
        uses = [not p.is_function and bool({p.a, p.b} & excluded) for p in problems]
        split = _breakdown(("with_excluded" if u else "without_excluded", c) for u, c in zip(uses, correct))
        summary.update(
            {key: split.get(key, {"accuracy": None, "n": 0}) for key in ("with_excluded", "without_excluded")}
        )
    return summary, predictions


def evaluate(
    model: LanguageModel,
    tokenizer: Tokenizer,
    fmt: Format,
    problems: list[Problem],
    excluded: Iterable[int] = (),
    **decoding,
) -> tuple[dict, list[dict]]:
    return score(fmt, problems, generate_answers(model, tokenizer, fmt, problems, **decoding), excluded)


@torch.no_grad()
def perplexity(model: LanguageModel, tokenizer: Tokenizer, text: str, batch_size: int = 64) -> float:
    """exp of the mean next-character cross-entropy over `text`, read in consecutive
    windows of the model's block_size (each character after the first is predicted once,
    from the characters before it in its window)."""
    device = next(model.parameters()).device
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    if len(ids) < 2:
        raise ValueError("perplexity needs at least 2 characters")
    block = model.config.block_size
    starts = list(range(0, len(ids) - 1, block))
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    # Full windows in batches; the last, shorter one (if any) on its own.
    full = [s for s in starts if s + block + 1 <= len(ids)]
    groups = [full[i : i + batch_size] for i in range(0, len(full), batch_size)]
    groups += [[s] for s in starts if s + block + 1 > len(ids)]
    for group in groups:
        width = min(block, len(ids) - 1 - group[0])
        x = torch.stack([ids[s : s + width] for s in group]).to(device)
        y = torch.stack([ids[s + 1 : s + width + 1] for s in group]).to(device)
        logits = model(x)
        total += float(torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="sum"))
        count += y.numel()
    model.train(was_training)
    return math.exp(total / count)


def check_fewshot_fits(
    fmt: Format, sets: list[ShotSet], problems: list[Problem], block_size: int, reference_prompt: bool = False
) -> None:
    """An error unless every few-shot prompt, with room for its answer, fits `block_size`."""
    longest_answer = max(fmt.max_new_tokens(p) for p in problems)
    longest_prompt = max(len(prompt_text(fmt, p, reference_prompt)) for p in problems)
    for k in range(len(sets[0].examples) + 1):
        need = longest_prompt + longest_answer + max(len(shot_prefix(fmt, s, k)) for s in sets)
        if need > block_size:
            raise ArithlabError(
                f"{k}-shot prompts need {need} positions (the longest prompt and answer), more than the "
                f"model's block_size {block_size}: use fewer shots (eval.shots)"
            )


def fewshot(
    model: LanguageModel,
    tokenizer: Tokenizer,
    fmt: Format,
    sets: list[ShotSet],
    problems: list[Problem],
    **decoding,
) -> dict[str, dict]:
    """Accuracy on `problems` with 0..k examples before each prompt (k: the sets' size), for
    each example set: per k, the mean over the sets, each set's accuracy, and the share of
    problems that at least one set got right (fewshot.json's `by_shots`)."""
    shots = len(sets[0].examples)
    reference = decoding.get("reference_prompt", False)
    check_fewshot_fits(fmt, sets, problems, model.config.block_size, reference)
    by_shots = {}
    for k in range(shots + 1):
        per_set, any_right, seen = [], [False] * len(problems), {}
        for shot_set in sets:
            prefix = shot_prefix(fmt, shot_set, k)
            if prefix not in seen:  # 0-shot prompts are the same in every set (but the text line's)
                seen[prefix] = generate_answers(model, tokenizer, fmt, problems, prefix=prefix, **decoding)
            summary, predictions = score(fmt, problems, seen[prefix])
            per_set.append(summary["accuracy"])
            any_right = [a or row["correct"] for a, row in zip(any_right, predictions)]
        by_shots[str(k)] = {
            "accuracy": sum(per_set) / len(per_set),
            "at_least_one": sum(any_right) / max(len(any_right), 1),
            "per_set": per_set,
            "prompt": prompt_text(fmt, problems[0], reference, shot_prefix(fmt, sets[0], k)),
        }
    return by_shots


def fewshot_eval(
    cfg: Config, model: LanguageModel, tokenizer: Tokenizer, splits: Splits, heldout: str | None, problems=None
) -> dict:
    """The few-shot evaluation cfg.eval describes, on `problems` (default: the first
    eval.shot_n test problems): fewshot.json's entry for its variant."""
    fmt, sets, problems = fewshot_plan(cfg, splits, heldout, problems)
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


def fewshot_plan(cfg: Config, splits: Splits, heldout: str | None, problems=None):
    """The format, example sets and problems of the few-shot evaluation cfg.eval describes."""
    ec = cfg.eval
    if ec.shot_variant == "scratchpad":
        fmt = get_format(ec.shot_format or "simplified")
    else:
        fmt = get_format(ec.shot_format or cfg.data.format)
    problems = splits.test[: ec.shot_n] if problems is None else problems
    if not problems:
        raise ArithlabError(f"config key eval.shot_n: {ec.shot_n} leaves no problems to evaluate")
    for problem in problems:
        fmt.check(problem)
    sets = shot_sets(splits.train, ec.shots, ec.shot_sets, fmt, ec.shot_variant, heldout, cfg.data.seed)
    return fmt, sets, problems
