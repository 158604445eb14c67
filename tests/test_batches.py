"""Training batches: which tokens each objective feeds the model and which it scores,
checked token by token on hand-made problems."""

from collections import Counter

import pytest
import torch

from arithlab.batches import IGNORE, AnswerBatches, PackedBatches, length_weights, number_gaps
from arithlab.formats import get_format
from arithlab.tasks import Problem
from arithlab.tokenizer import CharTokenizer

TOKENIZER = CharTokenizer()
REVERSE = get_format("reverse")


def text(ids) -> str:
    return TOKENIZER.decode([int(i) for i in ids])


def scored(x, y) -> str:
    """The targets of a row, `_` where the loss skips a position."""
    return "".join("_" if int(t) == IGNORE else text([t]) for t in y)


def test_answer_rows_score_the_answer_and_its_end_marker_only():
    batches = AnswerBatches([Problem("+", 128, 367), Problem("+", 5, 12)], REVERSE, TOKENIZER)
    x, y, real = batches.sample(8, torch.Generator().manual_seed(3))
    rows = {(text(r), scored(r, t)) for r, t in zip(x, y)}
    pad = text([0])
    # Position t predicts token t+1: the targets start under the prompt's `=`; the shorter
    # row is padded to the batch's longest, its padding never scored.
    assert rows == {("\n$128+367=594$", "_________594$\n"), ("\n$5+12=71$\n" + pad * 3, "______71$\n" + "_" * 4)}
    long_rows = sum(text(r).startswith("\n$128") for r in x)
    assert real == 14 * long_rows + 10 * (8 - long_rows)  # input tokens that are not padding


def test_loss_on_sample_scores_every_token_after_the_newline():
    batches = AnswerBatches([Problem("+", 128, 367)], REVERSE, TOKENIZER, loss_on="sample")
    x, y, real = batches.sample(1, torch.Generator().manual_seed(0))
    assert text(x[0]) == "\n$128+367=594$" and scored(x[0], y[0]) == "$128+367=594$\n"
    assert real == 14


def test_packed_row_is_whole_samples_cut_at_a_random_point_scoring_answers_with_their_prompt():
    batches = PackedBatches([Problem("+", 1, 2)], REVERSE, TOKENIZER, window=20)
    stream = "\n" + "$1+2=3$\n" * 4
    x, y, real = batches.sample(64, torch.Generator().manual_seed(0))
    starts = set()
    for row, targets in zip(x, y):
        row_text = text(row)
        start = stream.index(row_text)
        starts.add(start)
        assert len(row_text) == 20 and start <= 8  # cut within the first sample (or its newline)
        # The answer `3$\n` is scored (under the `=` and after) where the newline before its
        # sample lies inside the row.
        whole = [i for i in range(start, start + 20) if stream[i] == "=" and stream.rfind("\n", 0, i) >= start]
        expected = ["_"] * 20
        for i in whole:
            for j, char in enumerate("3$\n"):
                if i + j - start < 20:
                    expected[i + j - start] = char
        assert scored(row, targets) == "".join(expected), (start, row_text)
    assert starts == set(range(8)) and real == 64 * 20  # a cut at 8 reads as one at 0


def test_packed_rows_hold_only_samples_of_the_training_set_and_score_them_as_answer_rows_do():
    problems = [Problem("+", 128, 367), Problem("+", 5, 12), Problem("+", 99, 1), Problem("+", 7, 7)]
    samples = {REVERSE.render(p) for p in problems}
    batches = PackedBatches(problems, REVERSE, TOKENIZER, window=48)
    x, y, _ = batches.sample(32, torch.Generator().manual_seed(1))
    for row, targets in zip(x, y):
        # Between two newlines, every piece is a whole training sample; the scored tokens are
        # exactly the answers (after `=`) of those pieces.
        row_text, marks = text(row), scored(row, targets)
        cuts = [i for i, c in enumerate(row_text) if c == "\n"]
        for a, b in zip(cuts, cuts[1:]):
            assert row_text[a + 1 : b + 1] in samples
            answer_from = row_text.index("=", a) + 1
            assert marks[a:b] == "_" * (answer_from - 1 - a) + row_text[answer_from : b + 1]
        assert set(marks[: cuts[0]]) <= {"_"}  # the cut first sample is never scored


def test_balanced_lengths_draw_every_length_pair_equally_often():
    problems = [Problem("+", 100 + i, 200 + i) for i in range(90)] + [Problem("+", 3, 400 + i) for i in range(10)]
    weights = length_weights(problems)
    assert torch.isclose(weights[:90].sum(), weights[90:].sum())
    batches = AnswerBatches(problems, REVERSE, TOKENIZER, balance_lengths=True)
    x, _, _ = batches.sample(4000, torch.Generator().manual_seed(0))
    pairs = Counter("1x3" if text(row).startswith("\n$3+") else "3x3" for row in x)
    assert 1800 < pairs["1x3"] < 2200


def test_half_balance_draws_length_pairs_in_proportion_to_the_square_root_of_their_counts():
    # 90 and 10 samples: shares 90^0.5 : 10^0.5 = 3 : 1.
    problems = [Problem("+", 100 + i, 200 + i) for i in range(90)] + [Problem("+", 3, 400 + i) for i in range(10)]
    weights = length_weights(problems, 0.5)
    assert torch.isclose(weights[:90].sum(), 3 * weights[90:].sum())
    batches = AnswerBatches(problems, REVERSE, TOKENIZER, balance_lengths=0.5)
    x, _, _ = batches.sample(4000, torch.Generator().manual_seed(0))
    rare = sum(text(row).startswith("\n$3+") for row in x)
    assert 900 < rare < 1100


DIGITS = torch.zeros(TOKENIZER.vocab_size, dtype=torch.bool)
DIGITS[TOKENIZER.encode("0123456789")] = True


@pytest.mark.parametrize(
    "name, opens",
    [
        # \n$215+3=812$\n: 215 at 2, 3 at 6, the answer at 8; \n$12+345=753$: 2, 5, 9.
        ("reverse", [[2, 6, 8], [2, 5, 9]]),
        # \nInput:\n215+3\nTarget:\nA->8 ...: 8, 12, and the answer's A at 22; the
        # scratchpad's digits open none.
        ("simplified", [[8, 12, 22], [8, 11, 23]]),
    ],
)
def test_position_gaps_open_before_each_number_of_the_prompt_and_before_the_answer(name, opens):
    batches = AnswerBatches([Problem("+", 215, 3), Problem("+", 12, 345)], get_format(name), TOKENIZER)
    x, y = batches.tokens[:, :-1], batches.targets
    shifts = number_gaps(x, y != IGNORE, DIGITS, 5, torch.Generator().manual_seed(0))
    draws = torch.randint(6, x.shape, generator=torch.Generator().manual_seed(0))  # the gaps' sizes
    for row, at in enumerate(opens):
        # Each token's shift: the gaps opened at or before it; padding keeps the last.
        assert shifts[row].tolist() == [sum(int(draws[row, s]) for s in at if s <= t) for t in range(x.size(1))]
        assert shifts[row, -1] > 0
