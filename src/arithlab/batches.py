"""Batches for the three training objectives.

`answer` (ours): one sample a row, `\\n` + sample, padded to the longest row of the batch;
the loss covers every token after the prompt through the final `\\n`.
`packed` (ours): rows of whole samples drawn at random and joined, each row cut at a
random point of its first sample, so that a sample starts at a different position, after
different neighbours, every time it is seen (as in the study's windows); the loss covers
the answers whose prompt lies whole inside the row.
`stream` (the study's): all samples joined into one text (or mixed with a text corpus:
data.py's `training_stream`), random windows of it, loss on every character.

`train.position_gaps` (answer rows only): `number_gaps` shifts the position ids by a
random gap before each number of the prompt and before the answer.

`train.loss_on: sample` widens the answer and packed losses to every token of a sample,
its prompt included (as the study's loss does). `train.balance_lengths` (x from 0 to 1)
draws the rows so that an operand-length pair with n training samples comes up in
proportion to n^(1-x): 0 is the data's own mix, 1 every pair equally often.
"""

from __future__ import annotations

from collections import Counter

import torch

from arithlab.evaluator import prompt_text
from arithlab.formats import Format
from arithlab.tasks import Problem
from arithlab.tokenizer import CharTokenizer

IGNORE = -100  # the target of a position the loss skips (cross_entropy's ignore_index)


def length_weights(problems: list[Problem], balance: float = 1.0) -> torch.Tensor:
    """A weight per problem such that a (operation, digits of a, digits of b) class of n
    problems is drawn in proportion to n^(1-balance) (balance 1: every class equally
    often); problems of a function (sin, sqrt) form one class."""
    keys = [(p.op, None) if p.is_function else (p.op, len(str(p.a)), len(str(p.b))) for p in problems]
    counts = Counter(keys)
    return torch.tensor([float(counts[k]) ** -balance for k in keys], dtype=torch.double)


class _Rows:
    """Draws training samples by index: uniformly, or balanced over length pairs."""

    def __init__(self, problems: list[Problem], balance_lengths: float):
        self.count = len(problems)
        self.weights = length_weights(problems, balance_lengths) if balance_lengths else None

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.weights is None:
            return torch.randint(self.count, (n,), generator=generator)
        return torch.multinomial(self.weights, n, replacement=True, generator=generator)


class AnswerBatches:
    def __init__(
        self,
        problems: list[Problem],
        fmt: Format,
        tokenizer: CharTokenizer,
        balance_lengths: float = 0.0,
        loss_on: str = "answer",
    ):
        # Prompt and answer are encoded apart, so the prompt's tokens are exactly those the
        # model is given at evaluation (a BPE tokenizer could merge across the boundary).
        prompts = [tokenizer.encode(prompt_text(fmt, p)) for p in problems]
        rows = [prompt + tokenizer.encode(fmt.completion(p)) for prompt, p in zip(prompts, problems)]
        # Position t predicts token t+1; the loss starts at the first answer token, or at
        # the first token after the newline with loss_on: sample.
        first = [len(prompt) if loss_on == "answer" else 1 for prompt in prompts]
        self.rows = _Rows(problems, balance_lengths)
        self.longest = max(map(len, rows))
        self.lengths = torch.tensor([len(r) for r in rows])
        self.tokens = torch.zeros(len(rows), self.longest, dtype=torch.long)
        self.targets = torch.full((len(rows), self.longest - 1), IGNORE, dtype=torch.long)
        for i, (row, start) in enumerate(zip(rows, first)):
            self.tokens[i, : len(row)] = torch.tensor(row)
            self.targets[i, start - 1 : len(row) - 1] = self.tokens[i, start : len(row)]

    def sample(self, batch_size: int, generator: torch.Generator):
        """(inputs, targets, input tokens that are not padding)."""
        rows = self.rows.draw(batch_size, generator)
        width = int(self.lengths[rows].max()) - 1
        real_tokens = int((self.lengths[rows] - 1).sum())
        return self.tokens[rows, :width], self.targets[rows, :width], real_tokens


def number_gaps(
    tokens: torch.Tensor, scored: torch.Tensor, digits: torch.Tensor, most: int, generator: torch.Generator
) -> torch.Tensor:
    """`train.position_gaps`: shifts (B, T) of the position ids of answer rows `tokens`
    that grow by a random 0..`most` at the first digit of each number of the prompt and
    at the answer's first token, so that a number's digits, and the answer, keep their
    places relative to each other and to what follows them, and nothing else does.
    `scored`: (B, T) where the loss covers the next token (from the prompt's last token
    on); `digits`: which token ids are digits."""
    B, T = tokens.shape
    is_digit = digits[tokens]
    after_digit = torch.cat([torch.zeros(B, 1, dtype=torch.bool), is_digit[:, :-1]], 1)
    prompt_end = scored.int().argmax(1, keepdim=True)  # the prompt's last token predicts the answer's first
    t = torch.arange(T)
    starts = (is_digit & ~after_digit & (t <= prompt_end)) | (t == prompt_end + 1)
    return (torch.randint(most + 1, (B, T), generator=generator) * starts).cumsum(1)


class PackedBatches:
    def __init__(
        self,
        problems: list[Problem],
        fmt: Format,
        tokenizer: CharTokenizer,
        window: int,
        balance_lengths: float = 0.0,
        loss_on: str = "answer",
    ):
        self.window = window
        self.newline = torch.tensor(tokenizer.encode("\n"))
        samples, scored = [], []  # each sample's tokens, and which of them the loss covers
        for p in problems:
            prompt, answer = tokenizer.encode(fmt.prompt(p)), tokenizer.encode(fmt.completion(p))
            samples.append(prompt + answer)
            scored.append([loss_on == "sample"] * len(prompt) + [True] * len(answer))
        self.lengths = torch.tensor([len(s) for s in samples])
        longest = int(self.lengths.max())
        self.tokens = torch.zeros(len(samples), longest, dtype=torch.long)
        self.scored = torch.zeros(len(samples), longest, dtype=torch.bool)
        for i, (sample, marks) in enumerate(zip(samples, scored)):
            self.tokens[i, : len(sample)] = torch.tensor(sample)
            self.scored[i, : len(sample)] = torch.tensor(marks)
        self.rows = _Rows(problems, balance_lengths)
        # Enough samples to fill any row, however it is cut.
        self.per_row = (window + longest) // int(self.lengths.min()) + 2

    def sample(self, batch_size: int, generator: torch.Generator):
        """(inputs, targets, input tokens): every row `window` tokens, none of them padding."""
        picks = self.rows.draw(batch_size * self.per_row, generator).view(batch_size, -1)
        cuts = torch.rand(batch_size, generator=generator)
        # Each row is a newline, then its picked samples; sample k ends at ends[:, k] (and
        # piece 0 is the newline). The row is cut anywhere from the newline to the last
        # token of its first sample.
        newline = len(self.newline)
        ends = newline + self.lengths[picks].cumsum(1)
        begins = ends - self.lengths[picks]
        start = (cuts * (newline + self.lengths[picks[:, 0]])).long()
        at = start[:, None] + torch.arange(self.window + 1)  # (B, window + 1) places in the joined row
        k = torch.searchsorted(ends, at, right=True).clamp(max=self.per_row - 1)
        sample, offset = picks.gather(1, k), (at - begins.gather(1, k)).clamp(min=0)
        in_newline = at < newline
        tokens = torch.where(in_newline, self.newline[at.clamp(max=newline - 1)], self.tokens[sample, offset])
        # A sample's tokens are targets only where the row holds its whole prompt and the
        # newline before it.
        whole = begins.gather(1, k) - newline >= start[:, None]
        scored = ~in_newline & self.scored[sample, offset] & whole
        return tokens[:, :-1], torch.where(scored[:, 1:], tokens[:, 1:], IGNORE), batch_size * self.window


class StreamBatches:
    def __init__(self, stream: str, tokenizer: CharTokenizer, block_size: int):
        # `stream`: data.py's `training_stream`, the samples (in every mixed-in format, and
        # with a text where mixed) joined so that every sample follows a newline.
        self.data = torch.tensor(tokenizer.encode(stream), dtype=torch.long)
        self.block_size = min(block_size, len(self.data) - 1)

    def sample(self, batch_size: int, generator: torch.Generator):
        starts = torch.randint(len(self.data) - self.block_size, (batch_size,), generator=generator)
        offsets = torch.arange(self.block_size + 1)
        windows = self.data[starts[:, None] + offsets]
        return windows[:, :-1], windows[:, 1:], batch_size * self.block_size
