"""Position encodings: learned, none (NoPE), abacus digit places, coupled digit places."""

import json

import pytest
import torch
from conftest import tiny_config

from arithlab.api import load_run
from arithlab.build import gpt_config
from arithlab.errors import ArithlabError
from arithlab.model import GPT, GPTConfig, KVCache
from arithlab.positions import (
    FAR_ABOVE,
    FAR_BELOW,
    PLACE_DISTANCE,
    POSITIONS,
    digit_places,
    place_buckets,
    sinusoidal_places,
)
from arithlab.tokenizer import CharTokenizer
from arithlab.trainer import train

TOKENIZER = CharTokenizer()
# Every position encoding, and digit places embedded by sinusoids or as attention biases.
ENCODINGS = [*POSITIONS, "coupled:sinusoidal", "coupled:relative", "abacus:relative", "coupled:local"]


def _config(positions: str, **kw) -> GPTConfig:
    dims = ("model.n_layer=2", "model.n_head=2", "model.n_embd=32")
    cfg = tiny_config(f"model.positions={positions}", "data.format=reverse_all", *dims)
    cfg.model.block_size = 64
    fields = {**gpt_config(cfg, TOKENIZER).__dict__, "dropout": 0.0, **kw}
    return GPTConfig(**fields)


def _model(encoding: str) -> GPT:
    positions, _, table = encoding.partition(":")
    torch.manual_seed(0)
    return GPT(_config(positions, place_table=table or "learned")).eval()


def _places(text: str, positions: str) -> list[int]:
    idx = torch.tensor([TOKENIZER.encode(text)])
    model = _model(positions)
    return digit_places(idx, model.config, model.digits)[0][0].tolist()


def test_abacus_places_count_digits_within_each_number():
    # $821+763=594$ : every number's digits are 1, 2, 3 from the one written first.
    assert _places("\n$821+763=594$", "abacus") == [0, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0]


def test_coupled_places_shift_the_answer_so_each_digit_is_written_from_its_operands_place():
    # `=` takes place 1, from which the answer's first digit (place 1 of a and b) is
    # written; the answer's digits follow with 2, 3, 4; a newline ends the answer.
    text = "\n$821+763=594$\n$5+1=6$"
    expected = [0, 0, 1, 2, 3, 0, 1, 2, 3, 1, 2, 3, 4, 0, 0, 0, 1, 0, 1, 1, 2, 0]
    assert _places(text, "coupled") == expected


@pytest.mark.parametrize("positions", ["abacus", "coupled"])
def test_places_continue_across_cache_chunks_as_in_one_pass(positions):
    model = _model(positions)
    text = "\n$821+763=594$\n$15+1=61$\n$99"
    idx = torch.tensor([TOKENIZER.encode(text)])
    whole = digit_places(idx, model.config, model.digits)[0]
    run = answer = None
    pieces = []
    for start, end in [(0, 7), (7, 10), (10, 11), (11, 20), (20, idx.size(1))]:
        places, runs, answers = digit_places(idx[:, start:end], model.config, model.digits, run, answer)
        pieces.append(places)
        run, answer = runs[:, -1], answers[:, -1]
    assert torch.equal(torch.cat(pieces, 1), whole)


def _arithmetic_like_prompts(rows: int, length: int) -> torch.Tensor:
    """Random strings dense in digits, operators, `=`, `$` and newlines."""
    alphabet = torch.tensor(TOKENIZER.encode("0123456789+=$\n"))
    choice = torch.randint(len(alphabet), (rows, length), generator=torch.Generator().manual_seed(3))
    return alphabet[choice]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_kv_cache_decoding_equals_full_recomputation(encoding):
    model = _model(encoding)
    prompts = _arithmetic_like_prompts(6, 11)
    cached = model.generate(prompts, 40, use_cache=True)
    assert torch.equal(cached, model.generate(prompts, 40, use_cache=False))
    x = torch.cat([prompts, cached], 1)
    cache = KVCache(model.config, 6, x.size(1), "cpu", torch.float32)
    steps = [model(x[:, :11], cache)] + [model(x[:, i : i + 1], cache) for i in range(11, x.size(1))]
    assert torch.allclose(torch.cat(steps, 1), model(x), atol=1e-5)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_attention_kept_for_inspection_is_causal_sums_to_one_and_changes_no_logit(encoding):
    model = _model(encoding)
    x = _arithmetic_like_prompts(3, 20)
    logits, attention = model.attention_of(x)
    assert attention.shape == (2, 3, 2, 20, 20)  # layers, rows, heads, queries, keys
    assert torch.allclose(logits, model(x), atol=1e-5)
    assert torch.allclose(attention.sum(-1), torch.ones(2, 3, 2, 20), atol=1e-5)
    assert not attention.triu(1).any()
    assert all(not block.attn.keep_attention and block.attn.attention is None for block in model.transformer.h)


def test_none_has_no_position_embedding_and_abacus_one_per_place():
    assert _model("none").transformer.wpe is None
    assert _model("abacus").transformer.wpe.num_embeddings == 65  # places 1..64 and "no place" 0
    assert _model("learned").transformer.wpe.num_embeddings == 64
    assert _model("coupled:sinusoidal").transformer.wpe is None


def test_sinusoidal_place_codes_step_by_one_rotation_at_every_place():
    codes = sinusoidal_places(40, 8, 0.02)
    assert torch.equal(codes[0], torch.zeros(8))  # not a digit: no place
    # Per frequency, (sin, cos) of place p + 1 is (sin, cos) of p turned by the same angle,
    # whatever p: "one place lower" is one linear map at every place.
    pairs = codes[1:].view(39, 4, 2)
    angle = torch.atan2(pairs[1:, :, 0], pairs[1:, :, 1]) - torch.atan2(pairs[:-1, :, 0], pairs[:-1, :, 1])
    turn = torch.remainder(angle, 2 * torch.pi)
    assert torch.allclose(turn, turn[0].expand_as(turn), atol=1e-4)
    assert torch.allclose(pairs.norm(dim=2), torch.full((39, 4), 0.02 * 2**0.5), atol=1e-6)


def test_relative_place_buckets_clip_the_difference_and_keep_unplaced_tokens_apart():
    D = PLACE_DISTANCE
    queries = torch.tensor([[0, 1, 3, 30]])
    keys = torch.tensor([[0, 1, 2, 1 + D, 2 + D, 30 - D]])
    none, placed_only, key_only = 2 * D + 3, 2 * D + 4, 2 * D + 5
    expected = [
        [none, key_only, key_only, key_only, key_only, key_only],  # a query without a place
        [placed_only, D, D - 1, 0, FAR_ABOVE, FAR_ABOVE],  # place 1: same place, keys above it
        [placed_only, D + 2, D + 1, D - 2, D - 3, FAR_ABOVE],
        [placed_only, FAR_BELOW, FAR_BELOW, FAR_BELOW, FAR_BELOW, 2 * D],  # place 30: keys far below
    ]
    assert place_buckets(queries, keys)[0].tolist() == expected


def test_relative_places_make_the_model_blind_to_shifts_of_every_place():
    # Only differences of places reach attention, so shifting all of a row's places
    # changes nothing: what the model learns of places 1-10 holds at places 11-20.
    model = _model("coupled:relative")
    x = torch.tensor([TOKENIZER.encode("\n$821+763=594$"), TOKENIZER.encode("\n$5+71=67$\n$12")])
    assert model.transformer.wpe is None
    assert torch.allclose(model(x), model(x, offsets=torch.tensor([9, 30])), atol=1e-6)
    assert not torch.allclose(model(x), _model("coupled")(x))


def test_local_places_make_a_digit_blind_to_digits_far_from_its_place():
    # One layer: `=` (place 1) writes the answer's first digit. Changing the operand's digit
    # at place 7 leaves that logit as it was with local places; relative ones only damp it.
    # (Deeper, information still travels: through digits in between, and the operators.)
    near, far = "\n$1234567+7654321=", "\n$1234569+7654321="
    x = torch.tensor([TOKENIZER.encode(near), TOKENIZER.encode(far)])
    for table, blind in (("local", True), ("relative", False)):
        torch.manual_seed(0)
        model = GPT(_config("coupled", place_table=table, n_layer=1)).eval()
        for p in model.parameters():  # larger weights, so that every difference shows
            p.data.normal_(0, 0.5)
        logits = model(x)[:, -1]
        assert torch.allclose(logits[0], logits[1], atol=1e-5) == blind


def test_relative_and_local_places_read_and_write_past_block_size():
    # No weight depends on the length, so a 64-token model adds 40-digit numbers' worth of
    # tokens; a table of positions cannot.
    x = _arithmetic_like_prompts(2, 90)
    for encoding in ("coupled:relative", "coupled:local", "none"):
        model = _model(encoding)
        assert model.max_length is None
        assert model(x).shape == (2, 90, model.config.vocab_size)
        assert model.generate(x, 5).shape == (2, 5)
    with pytest.raises(ValueError, match="positions beyond block_size 64"):
        _model("coupled")(x)


def test_place_table_is_for_digit_places_only(tmp_path):
    with pytest.raises(ArithlabError, match="model.place_table: sinusoidal is for abacus or coupled places"):
        train(tiny_config("model.place_table=sinusoidal"), tmp_path / "run", progress=False)


def test_shifts_move_digit_places_only():
    model = _model("abacus")
    no_digits = torch.tensor([TOKENIZER.encode("\n$+=$\n$+")])
    digits = torch.tensor([TOKENIZER.encode("\n$12+3=")])
    shift = torch.tensor([5])
    assert torch.equal(model(no_digits), model(no_digits, offsets=shift))
    assert not torch.allclose(model(digits), model(digits, offsets=shift))


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoding_trains_saves_and_reloads(encoding, tmp_path):
    positions, _, table = encoding.partition(":")
    cfg = tiny_config(
        f"model.positions={positions}",
        f"model.place_table={table or 'learned'}",
        "data.format=reverse_all",
        "train.max_iters=30",
        "train.eval_interval=15",
        "data.n_test=50",
    )
    out = train(cfg, tmp_path / positions, progress=False)
    run = load_run(out)
    assert (run.config.model.positions, run.config.model.place_table) == (positions, table or "learned")
    x = torch.tensor([TOKENIZER.encode("\n$21+43=")])
    assert torch.equal(run.model(x), load_run(out).model(x))
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and losses[1] < losses[0]


def test_digit_places_need_numbers_written_least_significant_digit_first(tmp_path):
    with pytest.raises(
        ArithlabError,
        match="needs data.format reverse_all or reverse_pad or partial_products or partial_carries, not reverse",
    ):
        train(tiny_config("model.positions=abacus", "data.format=reverse"), tmp_path / "run", progress=False)


def test_length_generalization_run_scores_every_length_cell_and_draws_its_heat_map(tmp_path):
    from arithlab.plots import report

    cfg = tiny_config(
        "model.positions=coupled",
        "data.format=reverse_all",
        "data.lengths=[1, 2]",
        "data.test_lengths=[1, 2, 3]",
        "data.n_train=150",
        "data.n_test=90",
        "train.max_iters=20",
        "train.eval_interval=20",
    )
    out = train(cfg, tmp_path / "lengths", progress=False)
    summary = json.loads((out / "eval.json").read_text())
    assert list(summary["by_lengths"]) == [f"{a}x{b}" for a in (1, 2, 3) for b in (1, 2, 3)]
    assert summary["by_lengths"]["3x3"]["n"] == 10
    page = report(out).read_text()
    assert "![" in page and "(lengths.png)" in page
    assert (out / "lengths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
