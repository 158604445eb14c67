"""The command line: argument parsing only; the work is done by the modules it calls.

Every verb is an `add_*` function that declares its arguments, directly above the `cmd_*`
handler it points them to (`set_defaults(func=...)`); `_parser` adds the verbs in the order
`arithlab --help` lists them. The options several verbs take are declared once, in `SHARED`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

from arithlab import distributed, folders, rundir
from arithlab.config import CHOICES
from arithlab.errors import ArithlabError, notice
from arithlab.matrix_completion import SOLVERS


class _Parser(argparse.ArgumentParser):
    """Usage mistakes as one line, as every other error (the usage is one --help away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    from arithlab import __version__

    parser = _Parser(
        prog="arithlab",
        description="Teach arithmetic to small transformers.",
        epilog=_examples(
            "arithlab quickstart", "arithlab train configs/addition_reverse.yaml --set train.max_iters=2000"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"arithlab {__version__}")
    parser.set_defaults(func=None)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    for add in VERBS:
        add(verbs)
    return parser


def _examples(*lines: str, then: str = "") -> str:
    """A --help epilog: the example command lines, then any further text."""
    return f"{'examples' if len(lines) > 1 else 'example'}:\n" + "".join(f"  {line}\n" for line in lines) + then


def _verb(verbs, name: str, help: str, *examples: str, then: str = "") -> argparse.ArgumentParser:
    """A verb's parser, its --help ending in examples."""
    return verbs.add_parser(
        name, help=help, epilog=_examples(*examples, then=then), formatter_class=argparse.RawDescriptionHelpFormatter
    )


# The options several verbs take; a verb may give its own help, default or `required`.
SHARED = {
    "--set": dict(
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. train.max_iters=2000 (repeatable)",
    ),
    "--out": dict(type=Path),
    "--force": dict(action="store_true", help="replace an existing run (only a run, never other files)"),
    "--quiet": dict(action="store_true", help="no progress bar"),
}


def _shared(parser: argparse.ArgumentParser, flag: str, **adjusted) -> None:
    """Add the shared option `flag`, with the settings `adjusted` for this verb."""
    parser.add_argument(flag, **(SHARED[flag] | adjusted))


def _print_summary(summary: dict) -> None:
    print(f"accuracy {summary['accuracy']:.2%} ({summary['correct']}/{summary['n']})")
    for key in ("by_digits", "by_carries"):
        if summary[key]:  # no carries for multiplication, division or functions
            cells = ", ".join(f"{k}: {v['accuracy']:.2%} (n={v['n']})" for k, v in summary[key].items())
            print(f"  {key}: {cells}")
    if summary.get("by_first_wrong_line"):
        lines = ", ".join(f"{k}: {n}" for k, n in summary["by_first_wrong_line"].items())
        print(f"  wrong answers by their first wrong line: {lines}")
    if "text_perplexity" in summary:
        print(f"text perplexity {summary['text_perplexity']:.3f} (held-out text)")


# --- train ----------------------------------------------------------------------------


def add_train(verbs) -> None:
    p = _verb(
        verbs,
        "train",
        "train a run from a YAML config",
        "arithlab train configs/addition_reverse.yaml --set train.max_iters=2000 --out runs/rev",
        "arithlab train --resume runs/rev",
        "arithlab train --resume runs/rev --set train.threads=1    # how it runs may change, not what it trains",
    )
    p.add_argument("config", nargs="?", type=Path, help="YAML config (not needed with --resume)")
    _shared(p, "--set")
    _shared(p, "--out", help="run directory (default: runs/NAME)")
    p.add_argument("--resume", type=Path, metavar="RUN", help="continue an interrupted run")
    _shared(p, "--force")
    _shared(p, "--quiet")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> None:
    from arithlab.config import config_from_dict, load_config, merge, resume_overrides
    from arithlab.trainer import train

    if args.resume:
        if args.config:
            raise ArithlabError("--resume continues a run with its own config; give no CONFIG")
        rundir.check_resumable(args.resume)
        recorded = rundir.load_run_config(args.resume).to_dict()
        cfg = config_from_dict(merge(recorded, resume_overrides(args.overrides)))
        out = train(cfg, args.resume, resume=True, progress=not args.quiet)
    else:
        if not args.config:
            raise ArithlabError("train: give a CONFIG.yaml (or --resume RUN)")
        cfg = load_config(args.config, args.overrides)
        out = train(cfg, args.out or Path("runs") / cfg.name, force=args.force, progress=not args.quiet)
    if not distributed.is_main():
        return  # under torchrun, process 0 reports
    _print_summary(rundir.read_json(out / rundir.EVAL))
    print(f"run: {out}")


# --- eval, ask, inspect ---------------------------------------------------------------


def add_eval(verbs) -> None:
    p = _verb(
        verbs,
        "eval",
        "score a run on its test set or a problem file",
        "arithlab eval runs/quickstart",
        "arithlab eval runs/quickstart --problems my.txt --json",
        "arithlab eval runs/text_mixing --shots 3 --shot-sets 5 --shot-variant noisy",
    )
    p.add_argument("run", type=Path)
    p.add_argument("--problems", type=Path, help="problem file, one problem a line (e.g. 686+753=1439)")
    p.add_argument("--json", action="store_true", help="print the eval.json object (with --shots: the few-shot one)")
    p.add_argument(
        "--shots", type=int, metavar="K", help="few-shot evaluation with 0..K examples; adds to RUN/fewshot.json"
    )
    p.add_argument("--shot-sets", type=int, metavar="N", help="example sets per k (default: the run's eval.shot_sets)")
    p.add_argument(
        "--shot-variant",
        choices=CHOICES["eval.shot_variant"],
        help="plain: examples in the run's format; scratchpad: in --shot-format (default simplified); "
        "noisy: wrong answers; text: a line of the held-out text first",
    )
    p.add_argument("--shot-format", help="format of the examples and the query (default: see --shot-variant)")
    p.add_argument("--shot-n", type=int, metavar="N", help="test problems to use (default: the run's eval.shot_n)")
    p.add_argument(
        "--strict", action="store_true", help="a problem longer than the model can read and write is an error"
    )
    p.set_defaults(func=cmd_eval)


def cmd_eval(args) -> None:
    from arithlab.api import load_run
    from arithlab.data import read_problems

    run = load_run(args.run)
    problems = read_problems(args.problems) if args.problems else None
    if args.shots is not None:
        _fewshot(run, problems, args)
        return
    summary, _ = run.evaluate(problems, strict=args.strict)
    if summary.get("too_long"):
        notice(
            f"{summary['too_long']} of {summary['n']} problems are longer than the model can read and write "
            f"({run.model.max_length} tokens) and were scored wrong; --strict makes them an error"
        )
    text_perplexity = run.perplexity()  # None unless the run mixed text in
    if text_perplexity is not None:
        summary["text_perplexity"] = text_perplexity
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        _print_summary(summary)


def _fewshot(run, problems, args) -> None:
    keys = {"shots": args.shots, "shot_sets": args.shot_sets, "shot_variant": args.shot_variant}
    keys |= {"shot_format": args.shot_format, "shot_n": args.shot_n}
    result = run.fewshot(problems, save=True, **{k: v for k, v in keys.items() if v is not None})
    if args.json:
        print(json.dumps(result, indent=1))
        return
    what = f"{result['variant']} examples ({result['format']}), {result['sets']} sets, {result['n']} problems"
    print(f"few-shot, {what}:")
    for k, cell in result["by_shots"].items():
        print(f"  {k}-shot: mean {cell['accuracy']:.2%}, at least one set right {cell['at_least_one']:.2%}")
    print(f"written to {run.path / rundir.FEWSHOT}")


def add_ask(verbs) -> None:
    p = _verb(verbs, "ask", "ask a run one question", 'arithlab ask runs/quickstart "128+367"')
    p.add_argument("run", type=Path)
    p.add_argument("question", help='e.g. "128+367"')
    p.set_defaults(func=cmd_ask)


def cmd_ask(args) -> None:
    from arithlab.api import load_run

    answer = load_run(args.run).ask(args.question)
    print(f"output: {answer.output!r}")
    verdict = "correct" if answer.correct else f"wrong, expected {answer.expected}"
    print(f"answer: {answer.parsed if answer.parsed is not None else '(unparseable)'} ({verdict})")


def add_inspect(verbs) -> None:
    p = _verb(
        verbs,
        "inspect",
        "one problem token by token: each token's probability, every head's attention (PNG and JSON)",
        'arithlab inspect runs/quickstart "128+367"',
        'arithlab inspect runs/quickstart "128+367" --compare "128+37" --out carry_vs_none',
    )
    p.add_argument("run", type=Path)
    p.add_argument("problem", help='e.g. "128+367"')
    p.add_argument("--compare", metavar="PROBLEM2", help="a second problem, drawn beside the first")
    _shared(p, "--out", help="folder for inspect.png and inspect.json (default: RUN/inspect/PROBLEM)")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(args) -> None:
    from arithlab.api import load_run
    from arithlab.inspection import FIGURE, JSON, table

    run = load_run(args.run)
    inspections = [run.inspect(question) for question in (args.problem, args.compare) if question is not None]
    out = run.save_inspection(inspections, args.out)
    for inspection in inspections:
        print(table(inspection))
    print(f"written to {out}: {FIGURE}, {JSON}")


# --- export ---------------------------------------------------------------------------


def add_export(verbs) -> None:
    p = _verb(
        verbs,
        "export",
        "write a run as a Hugging Face GPT-2 model (needs arithlab[hf])",
        "arithlab export runs/quickstart --hf exports/quickstart",
        then="\nthen, in Python:\n"
        "  from transformers import AutoTokenizer, GPT2LMHeadModel\n"
        '  tok = AutoTokenizer.from_pretrained("exports/quickstart")\n'
        '  model = GPT2LMHeadModel.from_pretrained("exports/quickstart")\n'
        '  ids = tok("\\n$128+367=", return_tensors="pt").input_ids\n'
        "  print(tok.decode(model.generate(ids, max_new_tokens=8, do_sample=False)[0, ids.size(1):]))",
    )
    p.add_argument("run", type=Path)
    p.add_argument("--hf", type=Path, required=True, metavar="OUT", help="folder for the Hugging Face model")
    _shared(p, "--force", help="replace an earlier export (only an export)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> None:
    from arithlab.api import export_hf

    out = export_hf(args.run, args.hf, args.force)
    print(f"exported {args.run} as a Hugging Face GPT-2 model: {out}")


# --- data -----------------------------------------------------------------------------


def add_data(verbs) -> None:
    p = _verb(
        verbs,
        "data",
        "show or write data",
        "arithlab data show --format detailed 128+367",
        "arithlab data make configs/addition_plain.yaml --out data/plain",
        "arithlab data text --download",
    )
    actions = p.add_subparsers(dest="data_verb", required=True, metavar="ACTION")
    for add in (add_data_show, add_data_make, add_data_lengths, add_data_text):
        add(actions)


def add_data_show(actions) -> None:
    p = _verb(
        actions,
        "show",
        "print the exact training sample of one problem",
        "arithlab data show --format detailed 128+367",
    )
    p.add_argument("--format", required=True, help="plain, reverse, simplified, detailed, ...")
    p.add_argument("problem", help="e.g. 128+367")
    p.set_defaults(func=cmd_data_show)


def cmd_data_show(args) -> None:
    from arithlab.api import to_problem
    from arithlab.formats import get_format

    sys.stdout.write(get_format(args.format).render(to_problem(args.problem)))


def add_data_make(actions) -> None:
    p = _verb(
        actions,
        "make",
        "write the problem files a config would use",
        "arithlab data make configs/addition_plain.yaml --out data/plain",
    )
    p.add_argument("config", type=Path)
    _shared(p, "--set")
    _shared(p, "--out", required=True)
    _shared(p, "--force", help="replace problem files data make wrote before")
    p.set_defaults(func=cmd_data_make)


def cmd_data_make(args) -> None:
    from arithlab.config import load_config
    from arithlab.data import build_splits, describe

    folders.check_target(args.out, "data", args.force)
    cfg = load_config(args.config, args.overrides)
    splits = build_splits(cfg.data)
    folders.fresh(args.out, "data")
    rundir.write_splits(args.out, splits)
    rundir.write_json(args.out / rundir.DATA, describe(splits, cfg.data.format, cfg.data.exclude))
    sizes = f"{len(splits.train)} train, {len(splits.validation)} validation, {len(splits.test)} test"
    print(f"wrote {sizes} problems to {args.out}")


def add_data_lengths(actions) -> None:
    p = _verb(
        actions,
        "lengths",
        "write a test file with every operand-length pair, disjoint from a config's or sweep's training sets",
        "arithlab data lengths configs/sweeps/sample_efficiency_cpu.yaml --per-cell 100 --out length_test.txt",
        then="(then score runs on it with --set data.extra_test_file=length_test.txt)",
    )
    p.add_argument("source", type=Path, help="a config or a sweep file whose training problems to avoid")
    _shared(p, "--set")
    p.add_argument("--per-cell", type=int, default=100, help="problems per (digits of a, digits of b) cell")
    p.add_argument("--seed", type=int, default=0)
    _shared(p, "--out", required=True, help="the problem file to write (never overwritten)")
    p.set_defaults(func=cmd_data_lengths)


def cmd_data_lengths(args) -> None:
    from collections import Counter

    from arithlab.config import load_config
    from arithlab.data import length_test, write_problems
    from arithlab.evaluator import operand_lengths
    from arithlab.experiments import is_sweep, load_sweep

    if args.out.exists():
        raise ArithlabError(f"{args.out} already exists; choose another --out (it is never overwritten)")
    if args.per_cell < 1:
        raise ArithlabError(f"--per-cell {args.per_cell}: must be at least 1")
    if is_sweep(args.source):
        if args.overrides:
            raise ArithlabError("--set applies to a config; a sweep's points have their own settings")
        configs = [point.config.data for point in load_sweep(args.source)[1]]
    else:
        configs = [load_config(args.source, args.overrides).data]
    problems = length_test(configs, args.per_cell, args.seed)
    write_problems(args.out, problems)
    cells = Counter("x".join(map(str, operand_lengths(p))) for p in problems)
    print(f"wrote {len(problems)} problems to {args.out}: " + ", ".join(f"{k} {v}" for k, v in sorted(cells.items())))


def add_data_text(actions) -> None:
    p = _verb(
        actions,
        "text",
        "get tiny-shakespeare for text mixing, or describe a text file",
        "arithlab data text --download",
        "arithlab data text my_corpus.txt",
    )
    p.add_argument("file", nargs="?", type=Path, help="a text file to describe")
    p.add_argument("--download", action="store_true", help="fetch tiny-shakespeare into the cache")
    p.set_defaults(func=cmd_data_text)


def cmd_data_text(args) -> None:
    from arithlab.config import DataConfig
    from arithlab.data import download_shakespeare, read_text, shakespeare_path
    from arithlab.tokenizer import DEFAULT_CHARS

    if args.download:
        path = download_shakespeare()
        print(f"tiny-shakespeare: {path}\nuse it with: --set data.text_file={path}")
        return
    path = args.file or shakespeare_path()
    if not args.file and not path.exists():
        raise ArithlabError(f"no text given and {path} not there yet: arithlab data text --download fetches it")
    text = read_text(DataConfig(text_file=str(path)))
    extra = sorted(set(text.whole) - set(DEFAULT_CHARS))
    print(f"{text.path}: {len(text.whole)} characters ({len(text.train)} to train on, {len(text.heldout)} held out)")
    print(f"characters beyond the fixed vocabulary: {''.join(extra)!r} ({len(extra)})")


# --- quickstart -----------------------------------------------------------------------


def add_quickstart(verbs) -> None:
    p = _verb(
        verbs,
        "quickstart",
        "train 3-digit addition on this machine and print the accuracy",
        "arithlab quickstart --out runs/quickstart --force",
    )
    _shared(p, "--out", default=Path("runs/quickstart"))
    _shared(p, "--set")
    _shared(p, "--force")
    _shared(p, "--quiet")
    p.set_defaults(func=cmd_quickstart)


def quickstart_config_path() -> Path:
    return Path(str(resources.files("arithlab") / "configs" / "quickstart.yaml"))


def cmd_quickstart(args) -> None:
    from arithlab.config import load_config
    from arithlab.trainer import train

    cfg = load_config(quickstart_config_path(), args.overrides)
    started = time.perf_counter()
    out = train(cfg, args.out, force=args.force, progress=not args.quiet)
    summary = rundir.read_json(out / rundir.EVAL)
    print(
        f"quickstart: {summary['accuracy']:.2%} exact match on {summary['n']} unseen 3-digit additions"
        f"{_weakest_cell(summary)} after {time.perf_counter() - started:.0f} s (training {summary['seconds']:.0f} s); "
        f"run in {out}"
    )


def _weakest_cell(summary: dict, least: int = 20) -> str:
    """`, weakest ...`: the operand-length cell (of at least `least` problems) with the
    lowest accuracy, where the test has several."""
    cells = {key: cell for key, cell in summary.get("by_lengths", {}).items() if cell["n"] >= least}
    if len(cells) < 2:
        return ""
    key = min(cells, key=lambda k: cells[k]["accuracy"])
    digits = key.replace("x", "+")
    return f" (weakest: {digits}-digit problems, {cells[key]['accuracy']:.2%} of {cells[key]['n']})"


# --- sweep, report, completion --------------------------------------------------------


def add_sweep(verbs) -> None:
    p = _verb(
        verbs,
        "sweep",
        "run a grid of runs (resumable; local or on a Ray cluster)",
        "arithlab sweep configs/sweeps/sample_efficiency_cpu.yaml --jobs 2",
        "arithlab sweep configs/sweeps/sample_efficiency_cpu.yaml --dry-run",
        "arithlab sweep configs/sweeps/sample_efficiency_cpu.yaml --jobs 2 --only 'reverse_*'",
        "arithlab sweep SWEEP.yaml --backend ray --address auto",
    )
    p.add_argument("sweep", type=Path, help="sweep YAML (base config, axes, linked settings)")
    p.add_argument("--jobs", type=int, default=1, help="points trained at once (local backend)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray instance)")
    _shared(p, "--out", help="sweep folder (default: runs/NAME)")
    p.add_argument("--dry-run", action="store_true", help="list the points and exit")
    p.add_argument(
        "--only",
        action="append",
        metavar="PATTERN",
        help="run (or list) only the points whose names match this shell pattern; repeatable",
    )
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> None:
    from arithlab.experiments import describe_points, run_sweep

    if args.jobs < 1:
        raise ArithlabError(f"--jobs {args.jobs}: must be at least 1")
    if args.dry_run:
        print("\n".join(describe_points(args.sweep, args.only)))
        return
    run_sweep(args.sweep, args.jobs, args.out, args.backend, args.address, only=args.only)


def add_report(verbs) -> None:
    p = _verb(
        verbs,
        "report",
        "a sweep's runs as tables and the study's figures; a run's length heat map",
        "arithlab report runs/sample_efficiency_cpu",
        "arithlab report runs/length_coupled",
    )
    p.add_argument("folder", type=Path, help="a sweep folder, or one run directory (its length heat map)")
    p.add_argument(
        "--study", action="store_true", help="draw the study's 3-digit addition numbers beside ours (dashed)"
    )
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> None:
    from arithlab.plots import report

    print(f"report: {report(args.folder, args.study)}")


def add_completion(verbs) -> None:
    p = _verb(
        verbs,
        "completion",
        "matrix completion of the addition table, against the transformer",
        "arithlab completion --n 20 50 100 --trials 20 --out runs/completion",
        "arithlab completion --curves runs/completion/completion.json --sweep runs/completion_2digit "
        "--out runs/completion",
    )
    p.add_argument("--n", type=int, nargs="+", default=[20, 50, 100], help="table sizes")
    p.add_argument("--trials", type=int, default=20, help="random reveals a point")
    p.add_argument("--sweep", type=Path, help="a sweep of 2-digit addition runs to draw beside n = 100")
    _shared(p, "--out", default=Path("runs/completion"), help="folder for completion.json and PNGs")
    p.add_argument("--rule-only", action="store_true", help="skip nuclear-norm minimization")
    p.add_argument(
        "--solver",
        choices=SOLVERS,
        default=SOLVERS[0],
        help="nuclear norm: ADMM with singular value thresholding in numpy, or cvxpy's SCS ([completion])",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--curves", type=Path, help="draw the curves of this completion.json instead of measuring")
    p.set_defaults(func=cmd_completion)


def cmd_completion(args) -> None:
    from arithlab.matrix_completion import completion_curve, default_counts, sweep_rule_accuracy
    from arithlab.plots import collect, completion_figure

    if min(args.n) < 2 or args.trials < 1:
        raise ArithlabError(f"--n {args.n} --trials {args.trials}: sizes must be at least 2, trials at least 1")
    rows = collect(args.sweep)[1] if args.sweep else []
    sweep_rule_accuracy(args.sweep, rows)
    if args.curves:  # e.g. to add a sweep's transformer curve to curves measured before
        stored = rundir.read_json(args.curves)
        curves = stored["curves"]
        if not args.sweep:  # keep the transformer's points stored with the curves
            rows = [{**run, "status": "done"} for run in stored.get("sweep", [])]
    else:
        curves = []
        for n in args.n:
            nuclear = not args.rule_only
            curves.append(completion_curve(n, default_counts(n), args.trials, args.seed, nuclear, args.solver))
            print(json.dumps(curves[-1]))
    args.out.mkdir(parents=True, exist_ok=True)
    keys = ("run", "data.format", "data.n_train", "accuracy", "rule_accuracy")
    runs = [{key: row.get(key) for key in keys} for row in rows if row["status"] == "done"]
    rundir.write_json(args.out / "completion.json", {"curves": curves, "sweep": runs})
    for name, title in completion_figure(curves, args.out, rows):
        print(f"{title}: {args.out / name}")


# --- bench ----------------------------------------------------------------------------

BENCHMARKS = ("quickstart", "time_to_accuracy", "throughput", "scored", "decode", "compile", "ddp", "threads", "faults")


def add_bench(verbs) -> None:
    p = _verb(
        verbs,
        "bench",
        "run a benchmark of benchmarks/ (source checkout)",
        "arithlab bench quickstart",
        "arithlab bench decode --quick",
    )
    p.add_argument("name", help=", ".join(BENCHMARKS))
    p.add_argument("--quick", action="store_true", help="a smaller, faster version")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args) -> None:
    folder = Path(__file__).resolve().parents[2] / "benchmarks"
    script = folder / f"{args.name}.py"
    if args.name not in BENCHMARKS or not script.exists():
        raise ArithlabError(
            f"no benchmark {args.name!r} in {folder} (benchmarks: {', '.join(BENCHMARKS)}; they ship with the "
            "source checkout, so install with pip install -e .)"
        )
    quick = ["--quick"] if args.quick and args.name != "quickstart" else []
    done = subprocess.run([sys.executable, str(script), *quick], cwd=folder)
    if done.returncode:
        raise ArithlabError(f"benchmark {args.name} failed (exit code {done.returncode})")


# --- main -----------------------------------------------------------------------------

# The verbs, in the order `arithlab --help` lists them.
VERBS = (
    add_train,
    add_eval,
    add_ask,
    add_inspect,
    add_export,
    add_data,
    add_quickstart,
    add_sweep,
    add_report,
    add_completion,
    add_bench,
)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.func is None:
        parser.print_help()
        return 0
    try:
        args.func(args)
    except ArithlabError as err:
        print(f"arithlab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{_interrupted(args)}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader left (`arithlab sweep X --dry-run | head`): no traceback, and none
        # either when Python flushes stdout on exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


def _interrupted(args) -> str:
    """What an interrupted command left, and how to go on."""
    run = getattr(args, "resume", None) or getattr(args, "out", None)
    if run is None or not (run / rundir.CONFIG).exists():
        return "arithlab: interrupted"
    saved = "a checkpoint was saved" if rundir.has_checkpoint(run) else "before the first checkpoint"
    return f"arithlab: interrupted ({saved}); arithlab train --resume {run} continues"


if __name__ == "__main__":
    sys.exit(main())
