"""The Python API, mirroring the CLI: train a run, load it, ask it, evaluate it.

import arithlab
run = arithlab.train("configs/quickstart.yaml", out="runs/demo")
run.ask("128+367").parsed          # 495
run.save_inspection([run.inspect("128+367")])   # RUN/inspect/128+367/: attention figure and JSON
arithlab.evaluate(run, ["12+34", "999+1"])["accuracy"]
arithlab.export_hf(run, "exports/demo")   # a transformers GPT-2 with our tokenizer
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from arithlab import build, export, inspection, rundir, trainer
from arithlab.config import Config, config_from_dict, load_config
from arithlab.devices import pick_device
from arithlab.errors import ArithlabError
from arithlab.evaluator import decoding_options, fewshot_eval, generate_answers, perplexity, score, too_long
from arithlab.formats import get_format
from arithlab.inspection import Inspection
from arithlab.tasks import Problem, operation, read_problem


@dataclass
class Answer:
    question: str
    output: str  # the model's raw text after the prompt
    parsed: int | Decimal | None  # what the format's parser read from it (None: unparseable)
    expected: int | Decimal  # the format's target (sin, sqrt: a Decimal)

    @property
    def correct(self) -> bool:
        return self.parsed == self.expected


class Run:
    """A trained run directory, loaded for asking and evaluating."""

    def __init__(self, path: Path, device: str = "auto"):
        self.path = Path(path)
        self.config = rundir.load_run_config(self.path)
        self.format = get_format(self.config.data.format)
        self.device = pick_device(device)
        self.model, self.tokenizer = build.load_run_model(self.path, self.config, self.device)

    def ask(self, question: str) -> Answer:
        problem = to_problem(question)
        self._check_fits([problem])
        (output,) = generate_answers(
            self.model, self.tokenizer, self.format, [problem], **decoding_options(self.config)
        )
        return Answer(problem.question, output, self.format.parse(output, problem), self.format.target(problem))

    def inspect(self, question: Problem | str) -> Inspection:
        """The model's greedy answer to one problem of the run's operations, token by token
        with each token's probability and the runner-up's, and every layer's and head's
        attention over the whole sequence."""
        problem = to_problem(question)
        data = self.config.data
        trained = [operation(name).symbol for name in data.operations or [data.operation]]
        if problem.op not in trained:
            raise ArithlabError(f"{problem.question}: run {self.path} was trained on {' '.join(trained)} problems only")
        self.format.check(problem)
        self._check_fits([problem])
        return inspection.inspect(self.model, self.tokenizer, self.format, problem, self.config.eval.reference_prompt)

    def save_inspection(self, inspections: list[Inspection], out: str | Path | None = None) -> Path:
        """inspect.json and inspect.png of one inspection, or of two side by side, in `out`
        (default: RUN/inspect/PROBLEM, or PROBLEM_vs_OTHER); returns the folder."""
        default = self.path / inspection.INSPECT_DIR / inspection.folder_name([i.question for i in inspections])
        return inspection.write(inspections, Path(out) if out is not None else default)

    def evaluate(self, problems: list[Problem | str] | None = None, strict: bool = False) -> tuple[dict, list[dict]]:
        """Summary and per-problem predictions, on the run's own test set by default.

        A problem longer than the model can read and write is scored wrong, and counted in
        the summary's `too_long`; with `strict` it is an error instead."""
        problems = rundir.read_splits(self.path).test if problems is None else [to_problem(p) for p in problems]
        for problem in problems:
            self.format.check(problem)
        if strict:
            self._check_fits(problems)
        long = set(too_long(self.model, self.tokenizer, self.format, problems, self.config.eval.reference_prompt))
        fitting = [p for i, p in enumerate(problems) if i not in long]
        options = decoding_options(self.config)
        decoded = iter(generate_answers(self.model, self.tokenizer, self.format, fitting, **options))
        outputs = ["" if i in long else next(decoded) for i in range(len(problems))]  # "": scored wrong
        summary, predictions = score(self.format, problems, outputs, self.config.data.exclude)
        if long:
            summary["too_long"] = len(long)
        return summary, predictions

    def _check_fits(self, problems: list[Problem]) -> None:
        long = too_long(self.model, self.tokenizer, self.format, problems, self.config.eval.reference_prompt)
        if long:
            first = problems[long[0]].question
            what = (
                f"{first} is" if len(problems) == 1 else f"{len(long)} of {len(problems)} problems (e.g. {first}) are"
            )
            raise ArithlabError(f"{what} longer than the model can read and write ({self.model.max_length} tokens)")

    def fewshot(self, problems: list[Problem | str] | None = None, save: bool = False, **eval_keys) -> dict:
        """Few-shot accuracy as the run's eval config says, with `eval_keys` (shots=3,
        shot_sets=5, shot_variant="noisy", shot_format, shot_n) overriding it; on `problems`
        (default: the first shot_n test problems). `save` adds it to the run's fewshot.json."""
        cfg = config_from_dict(self.config.to_dict() | {"eval": dataclasses.asdict(self.config.eval) | eval_keys})
        splits = rundir.read_splits(self.path)
        heldout = self.path / rundir.TEXT_HELDOUT
        text = heldout.read_text(encoding="utf-8") if heldout.exists() else None
        chosen = None if problems is None else [to_problem(p) for p in problems]
        result = fewshot_eval(cfg, self.model, self.tokenizer, splits, text, chosen)
        if save:
            rundir.add_fewshot(self.path, result)
        return result

    def perplexity(self, text: str | None = None) -> float | None:
        """Perplexity of `text` (default: a text-mixed run's held-out text; None for a run
        without text)."""
        if text is None:
            heldout = self.path / rundir.TEXT_HELDOUT
            if not heldout.exists():
                return None
            text = heldout.read_text(encoding="utf-8")
        return perplexity(self.model, self.tokenizer, text)


def to_problem(question: Problem | str) -> Problem:
    if isinstance(question, Problem):
        return question
    try:
        return read_problem(question)
    except ValueError as err:
        raise ArithlabError(f"{question!r}: {err}") from None


def load_run(path: str | Path, device: str = "auto") -> Run:
    return Run(Path(path), device)


def train(
    config: Config | dict | str | Path,
    out: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
) -> Run:
    """Train a run from a Config, a dict of config values or a YAML path; returns it loaded.

    `resume` continues the run at `out` with its own config, taking from `config` only how
    it executes (train.threads, device, compile, max_minutes; eval.batch_size)."""
    if isinstance(config, dict):
        config = config_from_dict(config)
    elif not isinstance(config, Config):
        config = load_config(Path(config))
    path = trainer.train(config, Path(out or Path("runs") / config.name), resume, force, progress)
    return load_run(path, config.train.device)


def export_hf(run: Run | str | Path, out: str | Path, force: bool = False) -> Path:
    """Write a run as a Hugging Face model folder (GPT-2 and a tokenizer); needs arithlab[hf]."""
    return export.export(run.path if isinstance(run, Run) else Path(run), Path(out), force)


def evaluate(run: Run, problems: list[Problem | str] | None = None) -> dict:
    """eval.json's summary for `problems` (default: the run's test set)."""
    return run.evaluate(problems)[0]
