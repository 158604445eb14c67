"""Character tokenizer: every sample of every format round-trips; bad input is a clear error."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arithlab.errors import ArithlabError
from arithlab.formats import FORMATS
from arithlab.tasks import Problem
from arithlab.tokenizer import DEFAULT_CHARS, CharTokenizer

SETTINGS = settings(max_examples=200, deadline=None)

_operands = st.integers(0, 10**12)


def test_default_vocabulary_is_newline_and_printable_ascii():
    tok = CharTokenizer()
    assert tok.vocab_size == len(DEFAULT_CHARS) == 96
    assert DEFAULT_CHARS[0] == "\n"
    assert set(DEFAULT_CHARS) == {"\n"} | {chr(i) for i in range(32, 127)}


@SETTINGS
@given(st.sampled_from("+-*"), _operands, _operands)
def test_every_rendered_format_round_trips_through_the_tokenizer(op, a, b):
    tok = CharTokenizer()
    problem = Problem(op, a, b)
    for fmt in FORMATS.values():
        if not fmt.supports(problem):
            continue
        for text in ("\n" + fmt.render(problem), "\n" + fmt.prompt(problem)):
            ids = tok.encode(text)
            assert len(ids) == len(text)
            assert all(0 <= i < tok.vocab_size for i in ids)
            assert tok.decode(ids) == text


def test_distinct_characters_get_distinct_ids():
    tok = CharTokenizer()
    ids = tok.encode(DEFAULT_CHARS)
    assert ids == list(range(len(DEFAULT_CHARS)))


@pytest.mark.parametrize(("text", "bad"), [("12+é=3", "é"), ("1\t+2", "\t"), ("\r", "\r"), ("ok\x00", "\x00")])
def test_character_outside_the_vocabulary_is_an_error_naming_it(text, bad):
    with pytest.raises(ArithlabError) as info:
        CharTokenizer().encode(text)
    message = str(info.value)
    assert repr(bad) in message
    assert f"position {text.index(bad)}" in message


def test_vocabulary_with_repeated_characters_is_rejected():
    with pytest.raises(ArithlabError, match="repeated"):
        CharTokenizer("abca")


def test_save_then_load_round_trips(tmp_path):
    path = tmp_path / "vocab.json"
    custom = CharTokenizer("\n0123456789+=$")
    custom.save(path)
    loaded = CharTokenizer.load(path)
    assert loaded.chars == custom.chars
    assert loaded.encode("$12+3=51$\n") == custom.encode("$12+3=51$\n")
    assert json.loads(path.read_text()) == {"chars": "\n0123456789+=$"}

    CharTokenizer().save(path)
    assert CharTokenizer.load(path).chars == DEFAULT_CHARS


@pytest.mark.parametrize(
    "content",
    ['{"chars": "abc"', "not json", '{"letters": "abc"}', "[1, 2]", '{"chars": 5}', '{"chars": "aa"}'],
)
def test_loading_a_corrupted_vocabulary_is_an_error(tmp_path, content):
    path = tmp_path / "vocab.json"
    path.write_text(content)
    with pytest.raises(ArithlabError):
        CharTokenizer.load(path)


@pytest.mark.parametrize("content", ['{"chars": "abc"', "not json", '{"letters": "abc"}', "[1, 2]", '{"chars": 5}'])
def test_unreadable_vocabulary_error_names_the_file(tmp_path, content):
    path = tmp_path / "vocab.json"
    path.write_text(content)
    with pytest.raises(ArithlabError) as info:
        CharTokenizer.load(path)
    assert str(path) in str(info.value)


def test_loading_a_missing_vocabulary_is_an_error_naming_it(tmp_path):
    path = tmp_path / "absent" / "vocab.json"
    with pytest.raises(ArithlabError) as info:
        CharTokenizer.load(path)
    assert str(path) in str(info.value)
