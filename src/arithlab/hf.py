"""Hugging Face: pretrained GPT-2 models fine-tuned here.

`HFModel` and `HFTokenizer` put a pretrained GPT-2 (any checkpoint in Hugging Face form) and
its BPE tokenizer behind the interface our trainer and evaluator use for GPT and
CharTokenizer (evaluator.LanguageModel and evaluator.Tokenizer), so fine-tuning, LoRA
included, goes through the one training loop and the one evaluation. Our own runs go the
other way, to a Hugging Face GPT-2, in export.py.

transformers, tokenizers and peft are the optional extra `[hf]`, imported only when used.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn as nn

from arithlab.config import Config
from arithlab.errors import ArithlabError
from arithlab.model import GPT, adamw

HF_DIR = "hf"  # in an HF run: the checkpoint's config.json and tokenizer files
ADAPTER_DIR = "adapter"  # in a LoRA run: the adapter alone, as peft saves it


def require(module: str = "transformers"):
    """Import a module of the `[hf]` extra, or say how to install it."""
    try:
        return __import__(module)
    except ImportError:
        raise ArithlabError(f"this needs {module}: pip install 'arithlab[hf]'") from None


# --- pretrained GPT-2 behind our model and tokenizer interfaces ---------------------

_SPACE_BETWEEN_DIGITS = re.compile(r"(?<=[0-9])(?=[0-9])")
_SPACE_WITHIN_NUMBER = re.compile(r"(?<=[0-9]) (?=[0-9])")


class HFTokenizer:
    """A pretrained model's tokenizer (BPE for GPT-2) as our trainer and evaluator use one.

    With `digit_spaces` every pair of adjacent digits gets a space between them before
    encoding ("128+367=" -> "1 2 8+3 6 7="), so that each digit is a token of its own (the
    study's option for GPT-2); decoding takes those spaces out again. A space that
    the format itself puts between digits (the detailed scratchpad's "4 9 5") is read back
    without it too, which its parser does anyway.
    """

    def __init__(self, hf_tokenizer, digit_spaces: bool = False):
        self.hf = hf_tokenizer
        self.digit_spaces = digit_spaces
        self._containing: dict[str, list[int]] = {}

    @classmethod
    def load(cls, path_or_name: str, digit_spaces: bool = False) -> HFTokenizer:
        transformers = require()
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(path_or_name)
        except (OSError, ValueError) as err:
            raise ArithlabError(
                f"config key model.init: hf:{path_or_name}: cannot load its tokenizer ({_first_line(err)})"
            ) from None
        return cls(tokenizer, digit_spaces)

    @classmethod
    def load_run(cls, run: Path, digit_spaces: bool) -> HFTokenizer:
        if not (Path(run) / HF_DIR).is_dir():
            raise ArithlabError(f"{run}: a Hugging Face run without its {HF_DIR}/ folder")
        return cls.load(str(Path(run) / HF_DIR), digit_spaces)

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    def encode(self, text: str) -> list[int]:
        if self.digit_spaces:
            text = _SPACE_BETWEEN_DIGITS.sub(" ", text)
        return self.hf.encode(text, add_special_tokens=False)

    def decode(self, ids) -> str:
        text = self.hf.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)
        return _SPACE_WITHIN_NUMBER.sub("", text) if self.digit_spaces else text

    def ids_containing(self, chars: str) -> list[int]:
        """The ids of the tokens whose text holds any of `chars` (BPE tokens hold several
        characters: "$\n" is one in GPT-2's vocabulary)."""
        if chars not in self._containing:
            texts = self.hf.batch_decode([[i] for i in range(len(self.hf))], clean_up_tokenization_spaces=False)
            self._containing[chars] = [i for i, text in enumerate(texts) if any(ch in text for ch in chars)]
        return self._containing[chars]

    def save(self, run: Path) -> None:
        self.hf.save_pretrained(Path(run) / HF_DIR)


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def checkpoint_dims(path_or_name: str, dropout: float | None) -> dict:
    """The model section's dimensions, read from a pretrained checkpoint's config."""
    config = _checkpoint_config(path_or_name)
    return dict(
        n_layer=config.n_layer,
        n_head=config.n_head,
        n_embd=config.n_embd,
        block_size=config.n_positions,
        dropout=config.resid_pdrop if dropout is None else dropout,
    )


def _checkpoint_config(path_or_name: str):
    transformers = require()
    try:
        config = transformers.AutoConfig.from_pretrained(path_or_name)
    except (OSError, ValueError) as err:
        where = f"config key model.init: hf:{path_or_name}"
        raise ArithlabError(f"{where}: cannot load its config ({_first_line(err)})") from None
    if config.model_type != "gpt2":
        raise ArithlabError(
            f"config key model.init: hf:{path_or_name} is a {config.model_type} model; GPT-2 models are supported"
        )
    return config


class HFModel(nn.Module):
    """A transformers GPT-2 (LoRA-wrapped or not) with our GPT's interface: forward(idx,
    cache, offsets) -> logits, generate, optimizer, config.block_size and max_length."""

    def __init__(self, hf_model, lora: bool = False):
        super().__init__()
        self.hf = hf_model
        self.lora = lora
        base = hf_model.get_base_model() if lora else hf_model
        self.config = SimpleNamespace(block_size=base.config.n_positions)
        self.max_length = base.config.n_positions  # GPT-2's position table
        # transformers 5 calls the cache argument `cache`; 4.x `past_key_values`.
        params = inspect.signature(type(base).forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    @classmethod
    def pretrained(cls, path_or_name: str, cfg: Config, run: Path | None = None) -> HFModel:
        """The checkpoint's weights, dropout set as the config says, LoRA adapters added
        where model.lora_rank > 0; run directory `run` receives its config.json (the run's
        architecture)."""
        transformers = require()
        config = _checkpoint_config(path_or_name)
        _set_dropout(config, cfg.model.dropout)
        try:
            model = transformers.GPT2LMHeadModel.from_pretrained(path_or_name, config=config)
        except (OSError, ValueError) as err:
            raise ArithlabError(f"config key model.init: hf:{path_or_name}: cannot load ({_first_line(err)})") from None
        # Trained in float32 as our models are (autocast does bf16 on CUDA), whatever the
        # checkpoint's dtype; the run's config.json says so.
        model = model.float()
        model.config.dtype = "float32"
        if run is not None:
            model.config.save_pretrained(Path(run) / HF_DIR)
        return cls._adapted(model, cfg)

    @classmethod
    def from_run(cls, run: Path, cfg: Config) -> HFModel:
        """The architecture of a fine-tuned run (its weights: load them after)."""
        transformers = require()
        config = transformers.AutoConfig.from_pretrained(str(Path(run) / HF_DIR))
        _set_dropout(config, cfg.model.dropout)
        return cls._adapted(transformers.GPT2LMHeadModel(config), cfg)

    @classmethod
    def _adapted(cls, model, cfg: Config) -> HFModel:
        if not cfg.model.lora_rank:
            return cls(model)
        peft = require("peft")
        lora = peft.LoraConfig(
            r=cfg.model.lora_rank,
            lora_alpha=cfg.model.lora_alpha,
            lora_dropout=cfg.model.lora_dropout,
            target_modules=["c_attn"],  # the attention's query, key and value projection
            fan_in_fan_out=True,  # GPT-2's Conv1D stores weights as [in, out]
        )
        return cls(peft.get_peft_model(model, lora), lora=True)

    def forward(
        self, idx: torch.Tensor, cache=None, offsets: torch.Tensor | None = None, scored: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits for every position of `idx` (B, T), or with `scored` (B, T) those of the
        scored places, (N, V); `offsets` (B,) shift each row's position ids, as in our GPT."""
        positions = None
        if offsets is not None:
            positions = torch.arange(idx.size(1), device=idx.device)[None, :] + offsets[:, None]
        logits = self.hf(input_ids=idx, position_ids=positions, use_cache=False).logits
        return logits if scored is None else logits[scored]

    def optimizer(self, lr: float, weight_decay: float, betas: tuple[float, float], fused: bool = False):
        return adamw(self, lr, weight_decay, betas, fused)

    generate = GPT.generate  # the same decoding, through transformers' own key-value cache

    def decoder(self, idx: torch.Tensor, max_new_tokens: int, use_cache: bool):
        """As GPT.decoder: the logits of the token after `tokens`, with transformers' cache."""
        cache = {}  # the key-value cache transformers returns, under its argument's name

        def logits(tokens: torch.Tensor) -> torch.Tensor:
            out = self.hf(input_ids=tokens, use_cache=use_cache, **cache)
            if use_cache:
                cache[self._cache_arg] = out.past_key_values
            return out.logits[:, -1].float()

        return logits

    def save_adapter(self, folder: Path) -> None:
        self.hf.save_pretrained(str(folder), safe_serialization=True)

    def merged(self):
        """The plain transformers model, LoRA adapters merged into its weights."""
        return self.hf.merge_and_unload() if self.lora else self.hf


def _set_dropout(config, dropout: float | None) -> None:
    if dropout is not None:
        config.resid_pdrop = config.embd_pdrop = config.attn_pdrop = dropout
