"""Inspection: how a run's model answers one problem, token by token, and where it looks.

`inspect` decodes greedily, one token at a time, keeping each chosen token's probability
and the runner-up's, then reads the attention probabilities of every layer and head over
the whole sequence (prompt and answer). `write` saves one or two inspections (a problem
and the one it is compared with) as inspect.json and inspect.png, one panel per layer and
head with the characters on both axes; `table` is the text `arithlab inspect` prints.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from arithlab import folders
from arithlab.errors import ArithlabError
from arithlab.evaluator import prompt_text
from arithlab.formats import Format
from arithlab.model import GPT
from arithlab.tasks import Problem

JSON, FIGURE = "inspect.json", "inspect.png"
INSPECT_DIR = "inspect"  # a run's inspections, one folder each


@dataclass
class Step:
    """One decoded token, the probability the model gave it, and the next most likely token's."""

    token: str
    probability: float
    runner_up: str
    runner_up_probability: float


@dataclass
class Inspection:
    question: str
    tokens: list[str]  # the whole sequence, prompt then answer
    prompt_length: int
    steps: list[Step]  # one per answer token
    attention: list  # [layer][head][query][key], each query's probabilities over the keys

    @property
    def output(self) -> str:
        return "".join(self.tokens[self.prompt_length :])


@torch.no_grad()
def inspect(model, tokenizer, fmt: Format, problem: Problem, reference_prompt: bool = False) -> Inspection:
    """Greedy decoding of `problem` as evaluation decodes it (the same budget and stopping
    rule), each step from the whole sequence so far, then its attention."""
    if not isinstance(model, GPT):
        raise ArithlabError("inspect reads the attention of arithlab's own GPT, not of a Hugging Face GPT-2 run")
    device = next(model.parameters()).device
    prompt = tokenizer.encode(prompt_text(fmt, problem, reference_prompt))
    ids = torch.tensor([prompt], device=device)
    budget = fmt.max_new_tokens(problem)
    if model.max_length is not None:
        budget = min(budget, model.max_length - len(prompt))
    steps: list[Step] = []
    for _ in range(budget):
        top = torch.softmax(model(ids)[0, -1].float(), -1).topk(2)
        (chosen, runner_up), (p, q) = top.indices.tolist(), top.values.tolist()
        steps.append(Step(tokenizer.decode([chosen]), p, tokenizer.decode([runner_up]), q))
        ids = torch.cat([ids, top.indices[None, :1]], 1)
        text = "".join(step.token for step in steps)
        if text[-1] in fmt.stop_chars and fmt.is_complete(text):
            break
    _, attention = model.attention_of(ids)
    tokens = [tokenizer.decode([i]) for i in ids[0].tolist()]
    return Inspection(problem.question, tokens, len(prompt), steps, attention[:, 0].tolist())


def folder_name(questions: list[str]) -> str:
    """A folder name for inspecting these problems: `128+367`, `128+367_vs_128+37`; characters
    a file name should not hold (`*`, `/`, `%`, parentheses) become `_`."""
    return "_vs_".join(re.sub(r"[^0-9A-Za-z.+=-]", "_", q) for q in questions)


def write(inspections: list[Inspection], out: Path) -> Path:
    """inspect.json and inspect.png in folder `out`, which must be new, empty or an earlier
    inspection (whose two files are then replaced, nothing else touched)."""
    folders.check_target(out, "inspect", force=True)
    folders.mark(out, "inspect")
    value = {"problems": [dataclasses.asdict(i) | {"output": i.output} for i in inspections]}
    folders.write_atomic(out / JSON, json.dumps(value) + "\n")
    figure(inspections, out / FIGURE)
    return out


def _label(token: str) -> str:
    return {"\n": "\\n", " ": "␣"}.get(token, token)


def figure(inspections: list[Inspection], path: Path) -> None:
    """The attention of each inspection, side by side: a grid of layers (rows) by heads
    (columns), each panel a query-by-key matrix, the answer's rows below a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from arithlab.plots import save_figure

    layers, heads = len(inspections[0].attention), len(inspections[0].attention[0])
    panel = 1.0 + 0.16 * max(len(i.tokens) for i in inspections)  # inches: room for every character
    fig = plt.figure(figsize=(len(inspections) * heads * panel, layers * panel + 0.6), layout="constrained")
    for sub, inspection in zip(fig.subfigures(1, len(inspections), squeeze=False)[0], inspections):
        labels = [_label(t) for t in inspection.tokens]
        ticks = range(len(labels))
        for layer, row in enumerate(sub.subplots(layers, heads, squeeze=False)):
            for head, ax in enumerate(row):
                ax.imshow(inspection.attention[layer][head], cmap="viridis", vmin=0, vmax=1)
                # Below the line, the queries that write the answer (from the prompt's last token on).
                ax.axhline(inspection.prompt_length - 1.5, color="white", lw=0.6)
                ax.set_xticks(ticks, labels, fontsize=6)
                ax.set_yticks(ticks, labels, fontsize=6)
                ax.set_title(f"layer {layer}, head {head}", fontsize=8)
                ax.set_xlabel("key" if layer == layers - 1 else "", fontsize=7)
                ax.set_ylabel("query" if head == 0 else "", fontsize=7)
        sub.suptitle(f"{inspection.question} -> {inspection.output!r}", fontsize=10)
    save_figure(fig, path.parent, path.name, "attention")


def table(inspection: Inspection) -> str:
    """Each answer token with its probability and the runner-up's, as text."""
    lines = [f"{inspection.question}: output {inspection.output!r}", "step  token  probability  runner-up  probability"]
    for i, step in enumerate(inspection.steps, 1):
        chosen, other = _label(step.token), _label(step.runner_up)
        lines.append(f"{i:>4}  {chosen:>5}  {step.probability:>11.4f}  {other:>9}  {step.runner_up_probability:>11.4f}")
    return "\n".join(lines)
