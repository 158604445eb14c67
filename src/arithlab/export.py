"""Export: one of our runs as a Hugging Face GPT-2 model folder.

`export(run, out)` writes a run as a `transformers` GPT-2 model (GPT2LMHeadModel: the same
logits as ours on the same ids) with a tokenizer that maps our characters to our ids, so
`generate` there answers as `arithlab ask` does here. A fine-tuned Hugging Face run is
written as its own model, LoRA adapters merged. Needs the optional extra `[hf]`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from arithlab import build, folders, rundir
from arithlab.config import Config
from arithlab.errors import ArithlabError
from arithlab.evaluator import prompt_text
from arithlab.formats import get_format
from arithlab.hf import HFModel, require
from arithlab.model import GPT
from arithlab.tasks import read_problem
from arithlab.tokenizer import CharTokenizer

EXPORT_INFO = "arithlab.json"  # in an export: how prompts are written for this model


def export(run: Path, out: Path, force: bool = False) -> Path:
    """Write run `run` as a Hugging Face model folder `out` (config.json, model.safetensors,
    tokenizer files, arithlab.json)."""
    run, out = Path(run), Path(out)
    cfg = rundir.load_run_config(run)
    fmt = get_format(cfg.data.format)
    folders.check_target(out, "export", force)
    transformers = require()
    model, tokenizer = build.load_run_model(run, cfg, "cpu")
    if isinstance(model, HFModel):
        hf_model, hf_tokenizer = model.merged(), tokenizer.hf
    else:
        hf_model = to_gpt2(model, cfg, transformers)
        hf_tokenizer = char_tokenizer_for_hf(tokenizer)
        newline = tokenizer.ids["\n"]
        # Every sample starts after a newline; a one-line format's also ends with one, so
        # generate stops there by itself.
        hf_model.config.bos_token_id = newline
        if fmt.one_line:
            hf_model.config.eos_token_id = newline
            hf_model.generation_config.eos_token_id = newline
        hf_model.generation_config.pad_token_id = newline
        hf_model.generation_config.bos_token_id = newline
    folders.fresh(out, "export")  # only now: a refused export leaves the folder as it was
    hf_model.save_pretrained(out, safe_serialization=True)
    hf_tokenizer.save_pretrained(out)
    example = next(p for p in map(read_problem, ("128+367", "12*34", "sin(0.5)")) if fmt.supports(p))
    prompt = prompt_text(fmt, example)
    info = {
        "format": cfg.data.format,
        # What to give the model: a newline (every training sample follows one), then the
        # format's prompt; with digit_spaces, a space between adjacent digits.
        "example_prompt": tokenizer.hf.decode(tokenizer.encode(prompt)) if isinstance(model, HFModel) else prompt,
        "digit_spaces": cfg.model.digit_spaces,
        "run": str(run.resolve()),
    }
    rundir.write_json(out / EXPORT_INFO, info)
    return out


def gpt2_refusal(model: nn.Module) -> str | None:
    """Why GPT-2 cannot represent `model`, or None where it can."""
    if not isinstance(model, GPT):
        return f"its model is a {type(model).__name__}, not arithlab's GPT"
    if model.config.positions != "learned":
        return f"its model uses {model.config.positions} positions; GPT-2 has only learned absolute positions"
    names = set(model.state_dict())
    if "transformer.wpe.weight" not in names:
        return "its model has no learned absolute position embedding (GPT-2's only kind of positions)"
    expected = set(_gpt2_names(model.config.n_layer)) | {"lm_head.weight"}
    extra = sorted(names - expected)
    if extra:
        return f"its model has weights GPT-2 has no place for ({', '.join(extra[:3])})"
    if model.lm_head.weight is not model.transformer.wte.weight:
        return "its output layer is not tied to the token embedding"
    return None


def _gpt2_names(n_layer: int) -> list[str]:
    names = ["transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight", "transformer.ln_f.bias"]
    for i in range(n_layer):
        for part in ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"):
            names += [f"transformer.h.{i}.{part}.weight", f"transformer.h.{i}.{part}.bias"]
    return names


def to_gpt2(model: GPT, cfg: Config, transformers=None):
    """Our GPT as a transformers GPT2LMHeadModel with the same weights (and logits)."""
    transformers = transformers or require()
    reason = gpt2_refusal(model)
    if reason:
        raise ArithlabError(f"cannot export as GPT-2: {reason}")
    c = model.config
    config = transformers.GPT2Config(
        vocab_size=c.vocab_size,
        n_positions=c.block_size,
        n_embd=c.n_embd,
        n_layer=c.n_layer,
        n_head=c.n_head,
        n_inner=4 * c.n_embd,
        activation_function="gelu",  # exact (erf) GELU, as nn.GELU()
        resid_pdrop=c.dropout,
        embd_pdrop=c.dropout,
        attn_pdrop=c.dropout,
        layer_norm_epsilon=model.transformer.ln_f.eps,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=None,
    )
    ours = model.state_dict()
    theirs = {}
    for name in _gpt2_names(c.n_layer):
        if name in ours:
            tensor = ours[name].detach().cpu()
            # nn.Linear keeps weights as [out, in]; GPT-2's Conv1D as [in, out].
            is_linear = ".h." in name and name.endswith(".weight") and tensor.dim() == 2
            theirs[name] = (tensor.t() if is_linear else tensor).contiguous().clone()
        else:  # bias: false runs: GPT-2 always has biases, so they are zeros
            weight = ours[name.removesuffix(".bias") + ".weight"]  # Linear [out, in] or LayerNorm [C]
            theirs[name] = torch.zeros(weight.size(0), dtype=weight.dtype)
    theirs["lm_head.weight"] = theirs["transformer.wte.weight"]
    hf_model = transformers.GPT2LMHeadModel(config)
    missing, unexpected = hf_model.load_state_dict(theirs, strict=False)
    missing = [m for m in missing if not m.endswith(".attn.bias") and not m.endswith(".attn.masked_bias")]
    if missing or unexpected:  # a transformers version that names GPT-2's weights otherwise
        raise ArithlabError(f"cannot export as GPT-2: weights not placed {missing[:3]}, {unexpected[:3]}")
    hf_model.tie_weights()
    return hf_model.eval()


def char_tokenizer_for_hf(tokenizer: CharTokenizer):
    """A transformers tokenizer giving our character ids: every character one token, no
    normalization, no special tokens added."""
    transformers = require()
    tokenizers = require("tokenizers")
    vocab = {ch: i for i, ch in enumerate(tokenizer.chars)}
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token=None))
    # [\s\S]: any one character, the newline included.
    backend.pre_tokenizer = tokenizers.pre_tokenizers.Split(tokenizers.Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = tokenizers.decoders.Fuse()  # characters joined as they are, no spaces
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, clean_up_tokenization_spaces=False, model_input_names=["input_ids"]
    )
