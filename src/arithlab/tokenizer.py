"""Character tokenizer: one token per character, saved with every run as vocab.json.

The vocabulary is newline and printable ASCII, so every format, operation and English
text share ids and a model trained on one can be fine-tuned on another. A run that mixes
in a text with other characters (a tab, accented letters) grows it: those characters are
appended after the fixed ones, so the ids of the fixed ones never change.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

from arithlab.errors import ArithlabError
from arithlab.folders import write_atomic

DEFAULT_CHARS = "\n" + "".join(ch for ch in string.printable if ch.isprintable())


class CharTokenizer:
    def __init__(self, chars: str = DEFAULT_CHARS):
        if len(set(chars)) != len(chars):
            raise ArithlabError("vocabulary has repeated characters")
        self.chars = chars
        self.ids = {ch: i for i, ch in enumerate(chars)}

    def covering(self, text: str) -> CharTokenizer:
        """This vocabulary, plus every other character of `text` (in code point order):
        the ids of the characters it had stay the same."""
        return CharTokenizer(self.chars + "".join(sorted(set(text) - set(self.chars))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.ids[ch] for ch in text]
        except KeyError as missing:
            position = text.index(missing.args[0])
            raise ArithlabError(
                f"character {missing.args[0]!r} at position {position} of {text!r} is not in the vocabulary"
            ) from None

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in ids)

    def ids_containing(self, chars: str) -> list[int]:
        """The ids of the tokens whose text holds any of `chars` (here: those characters)."""
        return [self.ids[ch] for ch in chars if ch in self.ids]

    def save(self, path: Path) -> None:
        write_atomic(Path(path), json.dumps({"chars": self.chars}, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> CharTokenizer:
        try:
            chars = json.loads(Path(path).read_text(encoding="utf-8"))["chars"]
            if not isinstance(chars, str):
                raise TypeError("chars is not a string")
            return cls(chars)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ArithlabError(f"{path}: not a readable vocabulary ({err})") from None
