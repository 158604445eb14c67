"""Batches for the two training objectives.

`answer` (ours, the default): one sample a row, `\\n` + sample, padded to the longest row
of the batch; the loss covers every token after the prompt through the final `\\n`.
`stream` (the study's): all samples joined into one text (or mixed with a text corpus:
data.py's `training_stream`), random windows of it, loss on every character.
"""

from __future__ import annotations

import torch

from arithlab.evaluator import prompt_text
from arithlab.formats import Format
from arithlab.tasks import Problem
from arithlab.tokenizer import CharTokenizer

IGNORE = -100


class AnswerBatches:
    def __init__(self, problems: list[Problem], fmt: Format, tokenizer: CharTokenizer):
        # Prompt and answer are encoded apart, so the prompt's tokens are exactly those the
        # model is given at evaluation (a BPE tokenizer could merge across the boundary).
        prompts = [tokenizer.encode(prompt_text(fmt, p)) for p in problems]
        rows = [prompt + tokenizer.encode(fmt.render(p)[len(fmt.prompt(p)) :]) for prompt, p in zip(prompts, problems)]
        prompt_lengths = [len(prompt) for prompt in prompts]
        self.longest = max(map(len, rows))
        self.lengths = torch.tensor([len(r) for r in rows])
        self.tokens = torch.zeros(len(rows), self.longest, dtype=torch.long)
        self.targets = torch.full((len(rows), self.longest - 1), IGNORE, dtype=torch.long)
        for i, (row, plen) in enumerate(zip(rows, prompt_lengths)):
            self.tokens[i, : len(row)] = torch.tensor(row)
            # Position t predicts token t+1: the answer's tokens are plen .. len(row)-1.
            self.targets[i, plen - 1 : len(row) - 1] = self.tokens[i, plen : len(row)]

    def sample(self, batch_size: int, generator: torch.Generator):
        """(inputs, targets, input tokens that are not padding)."""
        rows = torch.randint(len(self.lengths), (batch_size,), generator=generator)
        width = int(self.lengths[rows].max()) - 1
        real_tokens = int((self.lengths[rows] - 1).sum())
        return self.tokens[rows, :width], self.targets[rows, :width], real_tokens


class StreamBatches:
    def __init__(
        self, problems: list[Problem], fmt: Format, tokenizer: CharTokenizer, block_size: int, text: str | None = None
    ):
        # Every sample follows a newline, as in the study's training files; `text`, where
        # given, is the whole stream already built (text-mixed runs).
        if text is None:
            text = "\n" + "".join(fmt.render(p) for p in problems)
        self.data = torch.tensor(tokenizer.encode(text), dtype=torch.long)
        self.block_size = min(block_size, len(self.data) - 1)

    def sample(self, batch_size: int, generator: torch.Generator):
        starts = torch.randint(len(self.data) - self.block_size, (batch_size,), generator=generator)
        offsets = torch.arange(self.block_size + 1)
        windows = self.data[starts[:, None] + offsets]
        return windows[:, :-1], windows[:, 1:], batch_size * self.block_size
