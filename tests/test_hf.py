"""Hugging Face: pretrained GPT-2 fine-tuned here (whole and LoRA), and our own
pretrain-then-fine-tune (`run:`). Our runs exported as GPT-2: test_export.py.

No network: the pretrained "GPT-2" is a tiny random one with a tiny BPE tokenizer, made
and saved locally with transformers and tokenizers.
"""

from __future__ import annotations

import json
import sys

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

from conftest import tiny_config  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoTokenizer, GPT2LMHeadModel  # noqa: E402

import arithlab  # noqa: E402
from arithlab import build, hf  # noqa: E402
from arithlab.build import resolve  # noqa: E402
from arithlab.cli import main  # noqa: E402
from arithlab.errors import ArithlabError  # noqa: E402
from arithlab.model import GPT, GPTConfig  # noqa: E402
from arithlab.tokenizer import CharTokenizer  # noqa: E402
from arithlab.trainer import train  # noqa: E402


def test_without_transformers_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ArithlabError, match=r"pip install 'arithlab\[hf\]'"):
        hf.require()


# --- fine-tuning a pretrained GPT-2 (a tiny local one) --------------------------------


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    """A tiny random GPT-2 and a tiny byte-level BPE tokenizer, saved as a Hub checkpoint is."""
    import tokenizers
    from transformers import GPT2Config, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("gpt2-tiny")
    bpe = tokenizers.ByteLevelBPETokenizer()
    lines = [f"{a}+{b}={a + b}\n${a}+{b}={str(a + b)[::-1]}$\n" for a in range(0, 100, 7) for b in range(0, 100, 11)]
    spaced = [" ".join(line) for line in lines]  # " 7" is a token of GPT-2's, as in real text
    bpe.train_from_iterator((lines + spaced) * 2, vocab_size=300, min_frequency=2, show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, clean_up_tokenization_spaces=False)
    tokenizer.save_pretrained(folder)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=64, n_layer=1, n_head=2, n_embd=32, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


def hf_config(folder, *extra):
    return tiny_config(
        f"model.init=hf:{folder}",
        "model.digit_spaces=true",
        "model.n_layer=null",
        "model.n_embd=null",
        "data.n_train=300",
        "data.n_val=20",
        "data.n_test=40",
        "train.max_iters=6",
        "train.eval_interval=3",
        "train.warmup_iters=2",
        "train.position_offset=2",
        *extra,
    )


def test_the_pretrained_model_and_its_tokenizer_are_what_evaluation_needs(tiny_gpt2):
    from arithlab.evaluator import LanguageModel, Tokenizer

    cfg = hf_config(tiny_gpt2)
    assert isinstance(hf.HFModel.pretrained(str(tiny_gpt2), cfg), LanguageModel)
    assert isinstance(hf.HFTokenizer.load(str(tiny_gpt2)), Tokenizer)


def test_digit_spaces_make_each_digit_a_token_and_read_back(tiny_gpt2):
    tokenizer = hf.HFTokenizer.load(str(tiny_gpt2), digit_spaces=True)
    text = "\n$128+367=594$\n"
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert [tokenizer.decode([i]).strip() for i in tokenizer.encode("128")] == ["1", "2", "8"]
    assert set(tokenizer.ids_containing("$")) >= set(tokenizer.encode("$"))


def test_full_fine_tune_of_a_pretrained_gpt2(tiny_gpt2, tmp_path):
    run_dir = train(hf_config(tiny_gpt2), tmp_path / "ft", progress=False)
    summary = json.loads((run_dir / "eval.json").read_text())
    assert 0 <= summary["accuracy"] <= 1 and summary["n"] == 40
    cfg = arithlab.load_run(run_dir).config
    assert (cfg.model.n_layer, cfg.model.n_embd, cfg.model.block_size) == (1, 32, 64)
    assert cfg.model.init == f"hf:{tiny_gpt2.resolve()}"
    assert (run_dir / "hf" / "config.json").exists() and not (run_dir / "vocab.json").exists()
    # Every weight trained: none is still the pretrained one.
    pretrained = load_file(str(tiny_gpt2 / "model.safetensors"))
    run = arithlab.load_run(run_dir, device="cpu")
    tuned = run.model.hf.state_dict()
    assert not torch.equal(
        tuned["transformer.h.0.attn.c_attn.weight"], pretrained["transformer.h.0.attn.c_attn.weight"]
    )
    assert run.ask("12+34").output == run.evaluate(["12+34"])[1][0]["output"]
    assert main(["ask", str(run_dir), "12+34"]) == 0 and main(["eval", str(run_dir)]) == 0
    # ... and exported back: transformers loads it with the same logits.
    out = arithlab.export_hf(run, tmp_path / "export")
    theirs = GPT2LMHeadModel.from_pretrained(out).eval()
    idx = torch.tensor([run.tokenizer.encode("\n$1 2+3 4=")])
    with torch.no_grad():
        assert (run.model(idx) - theirs(idx).logits).abs().max().item() < 1e-5
    assert AutoTokenizer.from_pretrained(out).encode("1+2") == run.tokenizer.hf.encode("1+2")


def test_lora_fine_tune_trains_only_the_adapters(tiny_gpt2, tmp_path):
    run_dir = train(hf_config(tiny_gpt2, "model.lora_rank=4", "model.lora_alpha=8"), tmp_path / "lora", progress=False)
    assert 0 <= json.loads((run_dir / "eval.json").read_text())["accuracy"] <= 1
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()
    run = arithlab.load_run(run_dir, device="cpu")
    assert run.model.lora
    pretrained = load_file(str(tiny_gpt2 / "model.safetensors"))
    weights = dict(run.model.hf.named_parameters())
    base = weights["base_model.model.transformer.h.0.attn.c_attn.base_layer.weight"]
    assert torch.equal(base, pretrained["transformer.h.0.attn.c_attn.weight"])
    assert torch.equal(weights["base_model.model.transformer.wte.weight"], pretrained["transformer.wte.weight"])
    assert weights["base_model.model.transformer.h.0.attn.c_attn.lora_B.default.weight"].abs().sum() > 0
    # Exported with the adapters merged in: the same logits.
    idx = torch.tensor([run.tokenizer.encode("\n$4 5+5 4=")])
    with torch.no_grad():
        ours = run.model(idx)
    theirs = GPT2LMHeadModel.from_pretrained(arithlab.export_hf(run, tmp_path / "export")).eval()
    with torch.no_grad():
        assert (ours - theirs(idx).logits).abs().max().item() < 1e-5


def test_stream_objective_fine_tunes_a_pretrained_gpt2_too(tiny_gpt2, tmp_path):
    run_dir = train(hf_config(tiny_gpt2, "train.objective=stream"), tmp_path / "stream", progress=False)
    summary = json.loads((run_dir / "eval.json").read_text())
    assert 0 <= summary["accuracy"] <= 1 and summary["tokens_seen"] > 0


def test_hf_config_mistakes_are_one_line_errors(tiny_gpt2, tmp_path):
    with pytest.raises(ArithlabError, match="model.init: 'gpt2' is not hf:PATH_OR_NAME or run:PATH"):
        train(tiny_config("model.init=gpt2"), tmp_path / "a", progress=False)
    with pytest.raises(ArithlabError, match="model.lora_rank: 4 needs model.init: hf:"):
        train(tiny_config("model.lora_rank=4"), tmp_path / "b", progress=False)
    with pytest.raises(ArithlabError, match="model.n_embd: 64 differs from the pretrained model's 32"):
        train(hf_config(tiny_gpt2, "model.n_embd=64"), tmp_path / "c", progress=False)
    with pytest.raises(ArithlabError, match="hf:.*nowhere: cannot load its "):
        train(hf_config(tmp_path / "nowhere"), tmp_path / "d", progress=False)
    with pytest.raises(ArithlabError, match="train.position_gaps: 1 needs arithlab's own model, not model.init: hf:"):
        train(hf_config(tiny_gpt2, "train.position_gaps=1"), tmp_path / "e", progress=False)
    with pytest.raises(ArithlabError, match="model.positions: abacus needs arithlab's own model, not model.init: hf:"):
        train(hf_config(tiny_gpt2, "model.positions=abacus", "data.format=reverse_all"), tmp_path / "f", progress=False)


# --- pretrain, then fine-tune: our own models (run:) --------------------------------


def test_fine_tune_starts_from_the_pretrained_run(tmp_path):
    steps = ["data.n_train=300", "data.n_val=20", "data.n_test=40", "train.max_iters=4", "train.eval_interval=4"]
    source = train(tiny_config("data.format=plain", *steps), tmp_path / "plain", progress=False)
    cfg = tiny_config(
        "data.format=reverse", f"model.init=run:{source}", "model.n_layer=null", "model.n_embd=null", *steps
    )
    from arithlab.data import build_splits

    resolved = resolve(cfg, build_splits(cfg.data))
    source_cfg = arithlab.load_run(source).config
    assert resolved.model.n_embd == source_cfg.model.n_embd and resolved.model.block_size > source_cfg.model.block_size
    model = build.new_model(resolved, CharTokenizer())
    pretrained = load_file(str(source / "model.safetensors"))
    for name, tensor in model.state_dict().items():
        if name in pretrained:
            rows = pretrained[name].size(0)
            assert torch.equal(tensor[:rows], pretrained[name]), name  # the position table grew
    tuned = train(cfg, tmp_path / "reverse", progress=False)
    assert 0 <= json.loads((tuned / "eval.json").read_text())["accuracy"] <= 1
    assert arithlab.load_run(tuned).ask("12+34").output  # reloads like any run
    assert arithlab.load_run(tuned).config.model.init == f"run:{source.resolve()}"


def test_pretrained_run_mismatch_names_the_key(tmp_path):
    source = train(
        tiny_config("train.max_iters=1", "train.eval_interval=1", "model.n_embd=64"), tmp_path / "s", progress=False
    )
    with pytest.raises(ArithlabError, match="model.n_embd: 32 does not match the pretrained run's 64"):
        train(tiny_config(f"model.init=run:{source}", "model.n_embd=32"), tmp_path / "t", progress=False)
    model = GPT(GPTConfig(vocab_size=CharTokenizer().vocab_size, block_size=64, n_layer=3, n_head=4, n_embd=64))
    with pytest.raises(ArithlabError, match=r"no weight transformer\.h\.2\."):
        build.load_pretrained_run(model, source)
    model = GPT(GPTConfig(vocab_size=CharTokenizer().vocab_size, block_size=64, n_layer=2, n_head=4, n_embd=32))
    wrong_width = r"weight (lm_head|transformer\.wte)\.weight is \(\d+, 64\), this model.s \(\d+, 32\)"
    with pytest.raises(ArithlabError, match=wrong_width):
        build.load_pretrained_run(model, source)


def test_interrupted_lora_run_resumes_to_the_uninterrupted_result(tiny_gpt2, tmp_path, monkeypatch):
    from arithlab import trainer

    cfg = hf_config(tiny_gpt2, "model.lora_rank=2")
    whole = load_file(str(train(cfg, tmp_path / "whole", progress=False) / "model.safetensors"))
    real_step, calls = trainer.train_step, []

    def step_then_crash(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # after the checkpoint at iteration 3
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_step", step_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", progress=False)
    monkeypatch.setattr(trainer, "train_step", real_step)
    assert not (tmp_path / "cut" / "eval.json").exists()
    resumed = load_file(str(train(cfg, tmp_path / "cut", resume=True, progress=False) / "model.safetensors"))
    assert whole.keys() == resumed.keys()
    for key in whole:
        assert torch.equal(whole[key], resumed[key]), key
