"""Export: our runs as Hugging Face GPT-2 models (same logits, same answers), and what
GPT-2 cannot represent.

No network: transformers reads the exported folders from disk.
"""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("transformers")

from conftest import tiny_config  # noqa: E402
from transformers import AutoTokenizer, GPT2LMHeadModel  # noqa: E402

import arithlab  # noqa: E402
from arithlab import export  # noqa: E402
from arithlab.cli import main  # noqa: E402
from arithlab.errors import ArithlabError  # noqa: E402
from arithlab.evaluator import _cut, prompt_text  # noqa: E402
from arithlab.formats import FORMATS, get_format  # noqa: E402
from arithlab.model import GPT, GPTConfig  # noqa: E402
from arithlab.tasks import read_problem  # noqa: E402
from arithlab.tokenizer import CharTokenizer  # noqa: E402
from arithlab.trainer import train  # noqa: E402

QUESTIONS = ["12+34", "99+1", "7+85", "50+50", "3+4", "68+27", "10+90", "45+54", "0+0", "88+88"]


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    return arithlab.export_hf(trained_run, tmp_path_factory.mktemp("export") / "tiny")


def test_export_gives_the_same_logits_in_transformers(trained_run, exported):
    ours = arithlab.load_run(trained_run, device="cpu").model
    theirs = GPT2LMHeadModel.from_pretrained(exported).eval()
    idx = torch.randint(ours.config.vocab_size, (4, ours.config.block_size), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (ours(idx) - theirs(idx).logits).abs().max().item()
    assert diff < 1e-5


def test_exported_tokenizer_gives_our_character_ids(exported):
    ours, theirs = CharTokenizer(), AutoTokenizer.from_pretrained(exported)
    problem = read_problem("128+367")
    texts = ["\n" + fmt.render(problem) for fmt in FORMATS.values() if fmt.supports(problem)]
    texts += ["\n$128+367=", "Hello, world!  ~{x}\n"]
    for text in texts:
        assert theirs(text).input_ids == ours.encode(text)
        assert theirs.decode(ours.encode(text)) == text


def test_generate_in_transformers_answers_as_ask_does(trained_run, exported):
    run = arithlab.load_run(trained_run, device="cpu")
    fmt = get_format(run.config.data.format)
    tokenizer = AutoTokenizer.from_pretrained(exported)
    model = GPT2LMHeadModel.from_pretrained(exported).eval()
    right = 0
    for question in QUESTIONS:
        problem = read_problem(question)
        ids = tokenizer(prompt_text(fmt, problem), return_tensors="pt").input_ids
        out = model.generate(ids, max_new_tokens=fmt.max_new_tokens(problem), do_sample=False)
        text = _cut(fmt, tokenizer.decode(out[0, ids.size(1) :]))
        answer = run.ask(question)
        assert text == answer.output
        assert fmt.parse(text, problem) == answer.parsed
        right += answer.correct
    assert right >= 8  # a trained model, not two equal pieces of noise


def test_export_of_a_run_without_biases(tmp_path):
    run = train(
        tiny_config("model.bias=false", "train.max_iters=3", "train.eval_interval=3"), tmp_path / "r", progress=False
    )
    out = arithlab.export_hf(run, tmp_path / "hf")
    ours = arithlab.load_run(run, device="cpu").model
    theirs = GPT2LMHeadModel.from_pretrained(out).eval()
    idx = torch.randint(ours.config.vocab_size, (2, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (ours(idx) - theirs(idx).logits).abs().max().item() < 1e-5


def test_export_refuses_a_model_gpt2_cannot_represent():
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=8))
    model.digit_embedding = torch.nn.Embedding(10, 8)  # what GPT-2 has no place for
    reason = export.gpt2_refusal(model)
    assert "digit_embedding.weight" in reason
    with pytest.raises(ArithlabError, match="cannot export as GPT-2: .*digit_embedding"):
        export.to_gpt2(model, None)
    del model.transformer["wpe"]
    assert "position" in export.gpt2_refusal(model)


@pytest.mark.parametrize("positions", ["none", "abacus", "coupled"])
def test_export_refuses_positions_gpt2_does_not_have(positions):
    # abacus and coupled have a table where GPT-2 has its positions: same shape, other meaning.
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=8, positions=positions))
    assert export.gpt2_refusal(model) == (
        f"its model uses {positions} positions; GPT-2 has only learned absolute positions"
    )


def test_export_command_writes_once_and_needs_force_to_replace(capsys, trained_run, tmp_path):
    out = tmp_path / "hf"
    assert main(["export", str(trained_run), "--hf", str(out)]) == 0
    assert {"config.json", "model.safetensors", "tokenizer.json", "arithlab.json"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "config.json").read_text())["activation_function"] == "gelu"
    capsys.readouterr()
    assert main(["export", str(trained_run), "--hf", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["export", str(trained_run), "--hf", str(out), "--force"]) == 0
