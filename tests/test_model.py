import pytest
import torch

from arithlab.config import PRESETS
from arithlab.model import GPT, GPTConfig


def _model(**kw) -> GPT:
    torch.manual_seed(0)
    model = GPT(GPTConfig(**{"vocab_size": 96, "block_size": 48, **kw}))
    return model.eval()


@pytest.mark.parametrize("kw", [{}, {"n_layer": 3, "n_head": 2, "n_embd": 32, "bias": False}, {"dropout": 0.2}])
def test_kv_cache_decoding_gives_the_same_tokens_as_full_recomputation(kw):
    model = _model(**kw)
    prompts = torch.randint(0, 96, (5, 9), generator=torch.Generator().manual_seed(1))
    cached = model.generate(prompts, 30, use_cache=True)
    full = model.generate(prompts, 30, use_cache=False)
    assert cached.shape == (5, 30)
    assert torch.equal(cached, full)


def test_kv_cache_logits_match_full_forward_at_every_position():
    from arithlab.model import KVCache

    model = _model()
    x = torch.randint(0, 96, (2, 20))
    full = model(x)
    cache = KVCache(model.config, 2, 20, "cpu", torch.float32)
    steps = [model(x[:, :7], cache)] + [model(x[:, i : i + 1], cache) for i in range(7, 20)]
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)


def test_generation_stops_when_every_row_is_finished():
    model = _model()
    prompts = torch.zeros((3, 4), dtype=torch.long)
    new = model.generate(prompts, 20, finished=lambda new: torch.full((new.size(0),), new.size(1) >= 3))
    assert new.shape == (3, 3)


def test_sampled_generation_is_reproducible_with_a_seeded_generator():
    model = _model()
    prompts = torch.zeros((4, 3), dtype=torch.long)
    runs = [
        model.generate(prompts, 10, temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(7))
        for _ in range(2)
    ]
    assert torch.equal(*runs)


def test_input_and_output_embeddings_are_tied():
    model = _model()
    assert model.lm_head.weight is model.transformer.wte.weight


def test_sequence_longer_than_block_size_is_refused():
    model = _model()
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros((1, 49), dtype=torch.long))


@pytest.mark.parametrize("std", [0.02, 0.05])
def test_init_std_sets_the_spread_of_the_random_weights(std):
    model = _model(n_layer=2, n_embd=128, init_std=std)
    wte, c_proj = model.transformer.wte.weight.detach(), model.transformer.h[0].attn.c_proj.weight.detach()
    # GPT-2's scheme at this scale: every matrix at std, the residual projections at std / sqrt(2 n_layer).
    assert float(wte.std()) == pytest.approx(std, rel=0.05)
    assert float(c_proj.std()) == pytest.approx(std / 2, rel=0.05)
    assert float(model.transformer.h[0].attn.c_attn.bias.detach().abs().max()) == 0.0
    # Fixed sinusoidal place codes are added to the token embeddings at the same spread.
    coded = _model(positions="coupled", place_table="sinusoidal", init_std=std)
    assert float(coded.place_codes[1:].pow(2).mean().sqrt()) == pytest.approx(std)


def test_nanogpt_preset_has_the_studys_size():
    # The study's NanoGPT: 6 layers, 6 heads, 384 wide, about 10.6M parameters.
    model = GPT(GPTConfig(vocab_size=96, block_size=256, **PRESETS["nanogpt"]))
    assert 10.5e6 < model.num_params() < 10.9e6


def test_zero_offsets_change_nothing_and_shifts_past_the_block_are_refused():
    model = _model()
    x = torch.randint(0, 96, (2, 10))
    assert torch.equal(model(x), model(x, offsets=torch.zeros(2, dtype=torch.long)))
    shifted = model(x, offsets=torch.tensor([0, 3]))
    assert torch.equal(shifted[0], model(x)[0]) and not torch.allclose(shifted[1], model(x)[1])
    with pytest.raises(ValueError, match="block_size"):
        model(x, offsets=torch.tensor([0, 39]))


@pytest.mark.parametrize(
    "kw", [{}, {"n_layer": 3, "n_head": 2, "n_embd": 32, "bias": False}, {"place_table": "relative"}]
)
def test_scored_logits_and_gradients_are_those_of_the_full_forward(kw):
    # The last block run at the scored places only must give exactly the logits (and so
    # the loss and every gradient) that the full forward gives there: rows with their
    # scored places at different spots, one row with none, shifted positions.
    model = _model(**kw).train()
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 96, (4, 12), generator=g)
    scored = torch.zeros(4, 12, dtype=torch.bool)
    scored[0, 8:] = True
    scored[1, 3:6] = True
    scored[2, [0, 5, 11]] = True  # row 3: none
    offsets = torch.tensor([0, 2, 5, 1])
    targets = torch.randint(0, 96, (4, 12), generator=g)[scored]

    def loss_and_grads(logits):
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
        loss.backward()
        return loss, [p.grad.clone() for p in model.parameters()]

    full, full_grads = loss_and_grads(model(x, offsets=offsets)[scored])
    only, only_grads = loss_and_grads(model(x, offsets=offsets, scored=scored))
    assert model(x, offsets=offsets, scored=scored).shape == (10, 96)
    assert torch.allclose(only, full, rtol=1e-5)
    for a, b in zip(only_grads, full_grads):
        assert torch.allclose(a, b, atol=1e-5)


def test_scored_places_keep_each_rows_order_and_mark_the_padding():
    from arithlab.model import _scored_places

    scored = torch.tensor([[False, True, False, True], [True, False, False, False], [False] * 4])
    places, kept = _scored_places(scored)
    assert places[kept].tolist() == [1, 3, 0]
    assert kept.tolist() == [[True, True], [True, False], [False, False]]
