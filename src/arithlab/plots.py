"""Reports: a sweep's runs collected into one table and the study's figures.

`report(folder)` writes `results.csv`, `results.md` and PNG figures (accuracy against
training samples per format with the spread over seeds, the phase-transition figure;
accuracy against training tokens; learning curves; accuracy by number of carries; for
length-generalization runs, accuracy by the operands' lengths as a heat map), and
`report.md`, one page that embeds them, with `report.html` beside it: the same page
self-contained. Given a single run directory instead, it writes that run's report with its
heat map. It reads only the run directories' files.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import defaultdict
from pathlib import Path

from arithlab import rundir
from arithlab.errors import ArithlabError
from arithlab.experiments import SWEEP_FILE, status
from arithlab.folders import write_atomic
from arithlab.report_html import to_html

# The study's headline table (3-digit addition, NanoGPT 10.6M, stream objective, 10,000
# test problems): test accuracy (%) by format and training samples, for `--study` lines.
STUDY_SIZES = (250, 500, 1000, 2000, 3000, 4000, 5000, 10000, 20000)
STUDY_ADDITION = {
    "plain": (0, 0, 0.39, 1.74, 28.75, 62.25, 81.09, 87.42, 90.12),
    "reverse": (0, 0, 1.57, 30.65, 79.14, 98.17, 99.83, 100, 100),
    "simplified": (0.4, 0.1, 84.65, 99.7, 99.8, 99.9, 100, 100, 100),
    "detailed": (59.5, 92.8, 99.8, 99.6, 100, 100, 99.9, 100, 100),
}


def collect(folder: Path) -> tuple[list[str], list[dict]]:
    """The sweep's axes and one row per point (finished or not)."""
    folder = Path(folder)
    if not (folder / SWEEP_FILE).exists():
        raise ArithlabError(f"{folder}: not a sweep folder (no {SWEEP_FILE}; run arithlab sweep first)")
    sweep = rundir.read_json(folder / SWEEP_FILE)
    rows = []
    for point in sweep["points"]:
        run = folder / point["name"]
        row = {"run": point["name"], **point["settings"], "status": status(run)}
        if row["status"] == "done":
            summary = rundir.read_json(run / rundir.EVAL)
            row.update(
                accuracy=summary["accuracy"],
                n_test=summary["n"],
                tokens_seen=summary.get("tokens_seen"),
                seconds=round(summary.get("seconds", 0.0), 1),
                iters=summary.get("iters"),
                **{f"carries_{k}": v["accuracy"] for k, v in summary["by_carries"].items()},
                **{f"digits_{k}": v["accuracy"] for k, v in summary["by_digits"].items()},
                **_length_cells(summary),
            )
        rows.append(row)
    return sweep["axes"], rows


def _length_cells(summary: dict) -> dict:
    """`lengths_AxB` accuracies, from the length-stratified extra test where the run has one
    (every cell well filled), else from its test set."""
    source = summary.get("extra_test", summary)
    cells = {f"lengths_{k}": v["accuracy"] for k, v in source.get("by_lengths", {}).items()}
    return cells | ({"lengths_from": "extra_test" if "extra_test" in summary else "test"} if cells else {})


def _columns(rows: list[dict]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def _write_tables(folder: Path, rows: list[dict]) -> None:
    columns = _columns(rows)
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(folder / "results.csv", table.getvalue())

    def cell(value) -> str:
        return f"{value:.4f}" if isinstance(value, float) else "" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    write_atomic(folder / "results.md", "\n".join(lines) + "\n")


def _mean_spread(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.pstdev(values) if len(values) > 1 else 0.0


def _accuracy_by_group_and_size(rows: list[dict]) -> dict[str, dict[int, list[float]]]:
    """Test accuracies (%) of the finished runs, by figure line and training-set size."""
    cells: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["status"] == "done" and "data.n_train" in row:
            cells[group_of(row)][row["data.n_train"]].append(100 * row["accuracy"])
    return cells


def samples_table(rows: list[dict], threshold: float = 0.9) -> str:
    """The study's headline layout as Markdown: one row per training-set size, one column
    per line of the figures, each cell the mean ± sd test accuracy (%) over the finished
    seeds; a last row gives the fewest samples whose mean reaches `threshold` ("> N" where
    none does, N the largest size). Empty where the sweep does not vary data.n_train."""
    cells = _accuracy_by_group_and_size(rows)
    if not cells:
        return ""
    groups = sorted(cells)
    sizes = sorted({n for points in cells.values() for n in points})
    lines = ["| training samples | " + " | ".join(groups) + " |", "|---" * (len(groups) + 1) + "|"]
    for n in sizes:
        row = []
        for group in groups:
            values = cells[group].get(n)
            row.append("" if not values else "{:.2f} ± {:.2f}".format(*_mean_spread(values)))
        lines.append(f"| {n:,} | " + " | ".join(row) + " |")
    needed = []
    for group in groups:
        reached = [n for n in sizes if n in cells[group] and _mean_spread(cells[group][n])[0] >= 100 * threshold]
        needed.append(f"{min(reached):,}" if reached else f"> {max(cells[group]):,}")
    lines.append(f"| samples to {100 * threshold:g}% | " + " | ".join(needed) + " |")
    return "\n".join(lines) + "\n"


def lengths_table(rows: list[dict]) -> str:
    """Accuracy (%) per (digits of a x digits of b) cell, one row per figure line and
    training-set size, the mean over finished seeds, and the weakest cell of each row.
    Empty where no run has more than one cell."""
    cell_keys = sorted({k for r in rows for k in r if k.startswith("lengths_") and k != "lengths_from"})
    if len(cell_keys) < 2:
        return ""
    groups: dict[tuple[str, int | None], list[dict]] = defaultdict(list)
    for row in rows:
        if row["status"] == "done":
            groups[(group_of(row), row.get("data.n_train"))].append(row)
    names = [k.removeprefix("lengths_") for k in cell_keys]
    lines = ["| line | training samples | " + " | ".join(names) + " | weakest |", "|---" * (len(names) + 3) + "|"]
    for (group, size), members in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1] or 0)):
        means = {
            name: statistics.mean(100 * r[key] for r in members if key in r)
            for name, key in zip(names, cell_keys)
            if any(key in r for r in members)
        }
        weakest = min(means, key=means.get)
        cells = " | ".join(f"{means[name]:.1f}" if name in means else "" for name in names)
        size_text = f"{size:,}" if size is not None else ""
        lines.append(f"| {group} | {size_text} | {cells} | {weakest}: {means[weakest]:.1f} |")
    return "\n".join(lines) + "\n"


def group_of(row: dict) -> str:
    """The line a run belongs to in the figures: its linked group's name where it has one
    (groups can share a format, e.g. reverse from scratch and reverse after pretraining),
    else its format."""
    return str(row.get("name") or row.get("data.format", "all"))


def _figures(folder: Path, rows: list[dict], study: bool = False) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["status"] == "done"]
    figures = []

    if done and "data.n_train" in done[0]:
        fig, ax = plt.subplots(figsize=(6, 4))
        by_group = _accuracy_by_group_and_size(done)
        for i, (group, points) in enumerate(sorted(by_group.items())):
            sizes = sorted(points)
            means, spreads = zip(*(_mean_spread(points[n]) for n in sizes))
            ax.errorbar(sizes, means, yerr=spreads, marker="o", capsize=3, color=f"C{i}", label=group)
            if study and group in STUDY_ADDITION:
                ax.plot(STUDY_SIZES, STUDY_ADDITION[group], ls="--", color=f"C{i}", alpha=0.7, label=f"{group}: study")
        all_sizes = sorted({n for points in by_group.values() for n in points})
        ax.set_xscale("log")
        ax.set_xticks(all_sizes, [f"{n:,}" for n in all_sizes], rotation=45)
        ax.minorticks_off()  # the log axis' own minor labels collide with the sizes'
        ax.set(
            xlabel="training samples",
            ylabel="test accuracy (%)",
            ylim=(-2, 102),
            title="accuracy against training samples (mean ± sd over seeds)",
        )
        ax.legend()
        figures.append(
            save_figure(fig, folder, "accuracy_vs_samples.png", "Accuracy against the number of training samples")
        )

    if done:
        fig, ax = plt.subplots(figsize=(6, 4))
        for group in sorted({group_of(r) for r in done}):
            mine = sorted((r for r in done if group_of(r) == group), key=lambda r: r["tokens_seen"] or 0)
            ax.plot([r["tokens_seen"] for r in mine], [100 * r["accuracy"] for r in mine], "o", label=group)
        ax.set(
            xscale="log",
            xlabel="training tokens",
            ylabel="test accuracy (%)",
            ylim=(-2, 102),
            title="accuracy against training tokens",
        )
        ax.legend()
        figures.append(save_figure(fig, folder, "accuracy_vs_tokens.png", "Accuracy against training tokens"))

        fig, ax = plt.subplots(figsize=(6, 4))
        colors = {g: f"C{i}" for i, g in enumerate(sorted({group_of(r) for r in done}))}
        for row in done:
            lines = (folder / row["run"] / rundir.METRICS).read_text().splitlines()
            metrics = [json.loads(line) for line in lines]
            ax.plot(
                [m["iter"] for m in metrics],
                [100 * m["val_accuracy"] for m in metrics],
                color=colors[group_of(row)],
                alpha=0.6,
            )
        for group, color in colors.items():
            ax.plot([], [], color=color, label=group)
        ax.set(xlabel="iteration", ylabel="validation accuracy (%)", title="learning curves", ylim=(-2, 102))
        ax.legend()
        figures.append(save_figure(fig, folder, "learning_curves.png", "Learning curves (validation accuracy)"))

        carries = sorted({k for r in done for k in r if k.startswith("carries_")}, key=lambda k: int(k.split("_")[1]))
        if carries:
            fig, ax = plt.subplots(figsize=(6, 4))
            groups = sorted({group_of(r) for r in done})
            width = 0.8 / len(groups)
            for i, group in enumerate(groups):
                mine = [r for r in done if group_of(r) == group]
                means = [100 * statistics.mean(r[c] for r in mine if c in r) for c in carries]
                ax.bar([j + i * width for j in range(len(carries))], means, width, label=group)
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(carries))], [c.split("_")[1] for c in carries])
            ax.set(
                xlabel="number of carries",
                ylabel="test accuracy (%), mean over runs",
                ylim=(0, 102),
                title="accuracy by number of carries",
            )
            ax.legend()
            figures.append(save_figure(fig, folder, "accuracy_by_carries.png", "Accuracy by number of carries"))
        figures += _length_heatmaps(folder, done)
    return figures


def _length_heatmaps(folder: Path, done: list[dict]) -> list[tuple[str, str]]:
    """One heat map per run that tested chosen operand lengths (data.test_lengths)."""
    figures = []
    for row in done:
        run = folder / row["run"]
        if rundir.load_run_config(run).data.test_lengths:
            name = f"lengths_{row['run']}.png"
            figures.append(length_heatmap(run, folder / name))
    return figures


def length_heatmap(run: Path, path: Path) -> tuple[str, str]:
    """Test accuracy for every (digits of a, digits of b) cell of a run, the training
    lengths marked; (file name, title)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = rundir.load_run_config(run)
    cells = {
        tuple(map(int, key.split("x"))): v["accuracy"]
        for key, v in rundir.read_json(run / rundir.EVAL)["by_lengths"].items()
    }
    rows = sorted({a for a, _ in cells})
    cols = sorted({b for _, b in cells})
    grid = [[100 * cells[(a, b)] if (a, b) in cells else float("nan") for b in cols] for a in rows]
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * len(cols), 1.0 + 0.4 * len(rows)))
    image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100, origin="lower", aspect="auto")
    for i, a in enumerate(rows):
        for j, b in enumerate(cols):
            if (a, b) in cells:
                value = grid[i][j]
                ax.text(
                    j, i, f"{value:.0f}", ha="center", va="center", fontsize=7, color="white" if value < 60 else "black"
                )
    trained = set(cfg.data.lengths or range(1, cfg.data.digits + 1))
    ax.set_xticks(range(len(cols)), [f"{b}*" if b in trained else str(b) for b in cols], fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{a}*" if a in trained else str(a) for a in rows], fontsize=7)
    ax.set(xlabel="digits of b (* trained)", ylabel="digits of a (* trained)")
    title = f"Accuracy (%) by operand lengths: {run.name}"
    table = f" ({cfg.model.place_table} places)" if cfg.model.place_table != "learned" else ""
    ax.set_title(f"{cfg.model.positions} positions{table}, {cfg.data.format}", fontsize=9)
    fig.colorbar(image, ax=ax, label="test accuracy (%)")
    return save_figure(fig, path.parent, path.name, title)


def save_figure(fig, folder: Path, name: str, title: str) -> tuple[str, str]:
    import matplotlib.pyplot as plt

    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    write_atomic(folder / name, image.getvalue())
    return name, title


def report(folder: Path, study: bool = False) -> Path:
    """Write the tables, figures and report.md of a sweep folder, or the report of one
    run directory; returns report.md. `study` draws the study's 3-digit addition numbers
    (dashed) beside ours in the accuracy-against-samples figure."""
    folder = Path(folder)
    if (folder / rundir.EVAL).exists() and not (folder / SWEEP_FILE).exists():
        return _run_report(folder)
    axes, rows = collect(folder)
    _write_tables(folder, rows)
    figures = _figures(folder, rows, study)
    done = sum(r["status"] == "done" for r in rows)
    page = [f"# Sweep report: {folder.name}", "", f"{done} of {len(rows)} runs finished. Axes: {', '.join(axes)}.", ""]
    table = samples_table(rows)
    if table:
        page += ["## Test accuracy (%) by training samples (mean ± sd over seeds)", "", table]
    table = lengths_table(rows)
    if table:
        stratified = any(r.get("lengths_from") == "extra_test" for r in rows)
        source = "the length-stratified extra test" if stratified else "the test set"
        page += [
            f"## Accuracy (%) by operand lengths (digits of a x digits of b), {source}, mean over seeds",
            "",
            table,
        ]
    for name, title in figures:
        page += [f"## {title}", "", f"![{title}]({name})", ""]
    page += ["## All runs", "", (folder / "results.md").read_text()]
    return _write_page(folder, page)


def _run_report(run: Path) -> Path:
    summary = rundir.read_json(run / rundir.EVAL)
    page = [
        f"# Run report: {run.name}",
        "",
        f"Test accuracy {100 * summary['accuracy']:.2f}% on {summary['n']} problems.",
        "",
    ]
    if len(summary.get("by_lengths", {})) > 1:
        name, title = length_heatmap(run, run / "lengths.png")
        page += [f"## {title}", "", f"![{title}]({name})", ""]
    return _write_page(run, page)


def _write_page(folder: Path, page: list[str]) -> Path:
    """report.md, and beside it the same as one self-contained report.html."""
    markdown = "\n".join(page)
    write_atomic(folder / "report.md", markdown)
    write_atomic(folder / "report.html", to_html(markdown, folder))
    return folder / "report.md"


def completion_figure(curves: list[dict], folder: Path, sweep_rows: list[dict] = ()) -> list[tuple[str, str]]:
    """One figure per table size: probability of completion against entries revealed, by
    the rectangle rule and by nuclear-norm minimization; for n = 100, beside it, the
    transformer's test accuracy on 2-digit addition against its training samples (the
    revealed entries of the same table), per format, from a sweep's finished runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    for curve in curves:
        fig, ax = plt.subplots(figsize=(6, 4))
        for method, label in (("rectangle_rule", "rectangle rule"), ("nuclear_norm", "nuclear-norm minimization")):
            if method in curve:
                ax.plot(curve["revealed"], [100 * v for v in curve[method]], "o-", label=f"completion: {label}")
        if curve["n"] == 100:
            by_group = _accuracy_by_group_and_size(sweep_rows)
            rule: dict[int, list[float]] = defaultdict(list)
            for row in sweep_rows:
                if row["status"] == "done" and "data.n_train" in row:
                    rule[row["data.n_train"]].append(100 * row["rule_accuracy"])
            series = [(f"transformer: {group}", points, "s", "--") for group, points in sorted(by_group.items())]
            if rule:
                series.append(("rectangle rule on the same training set, its test set", rule, "^", ":"))
            for label, points, marker, line in series:
                sizes = sorted(points)
                means, spreads = zip(*(_mean_spread(points[n]) for n in sizes))
                ax.errorbar(sizes, means, yerr=spreads, marker=marker, ls=line, capsize=3, label=label)
        ax.set(
            xscale="log",
            xlabel="entries revealed (training samples)",
            ylabel="% (completion probability, or test accuracy)",
            ylim=(-2, 102),
            title=f"{curve['n']} x {curve['n']} addition table ({curve['trials']} trials a point)",
        )
        ax.legend(fontsize=8)
        figures.append(
            save_figure(
                fig, folder, f"completion_n{curve['n']}.png", f"Completing the {curve['n']} x {curve['n']} table"
            )
        )
    return figures
