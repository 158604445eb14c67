"""Text mixed with arithmetic: the stream's exact order, the vocabulary that grows to cover
the text, held-out perplexity, and the download that fails with a clear message."""

from __future__ import annotations

import io
import json
import math
import urllib.error
import urllib.request

import pytest
import torch
from conftest import tiny_config

from arithlab import build, rundir
from arithlab.api import load_run
from arithlab.cli import main
from arithlab.config import DataConfig
from arithlab.data import SHAKESPEARE_URL, build_splits, mix_text, read_text, text_chunks, training_stream
from arithlab.errors import ArithlabError
from arithlab.evaluator import perplexity
from arithlab.model import GPT
from arithlab.tasks import Problem
from arithlab.tokenizer import DEFAULT_CHARS, CharTokenizer

# A small text with characters beyond printable ASCII (a tab, an accented letter).
VERSE = "To be, or not to be:\tthat is the question.\nWhether 'tis nobler in the mind to suffer\nthé slings!\n"


def _write(tmp_path, text: str, name: str = "corpus.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_text_chunks_are_consecutive_pieces_of_the_given_size():
    assert text_chunks("abcdefgh", 3) == ["abc", "def", "gh"]
    assert "".join(text_chunks(VERSE, 7)) == VERSE


def test_mix_text_puts_chunks_then_a_newline_then_a_share_of_the_samples_in_each_block():
    samples = [f"{i}+0={i}\n" for i in range(5)]
    chunks = ["AB", "CD", "EF"]
    # 2 blocks of 2 chunks; 5 samples: block 0 holds samples 0-1, block 1 samples 2-4;
    # chunk 3 of the stream is chunks[0] again: the text starts over when it runs out.
    assert mix_text([samples], chunks, per_block=2, blocks=2) == ("ABCD\n0+0=0\n1+0=1\nEFAB\n2+0=2\n3+0=3\n4+0=4\n")


def test_mix_text_ratio_of_the_study_72_chunks_per_hundredth_of_the_samples():
    samples = [f"{i}+1={i + 1}\n" for i in range(1000)]
    chunks = [f"<{k}>" for k in range(10_000)]
    stream = mix_text([samples], chunks, per_block=72, blocks=100)
    blocks = stream.split("<")
    assert stream.count("<") == 7200
    # Every block: 72 chunks in order, then exactly 10 samples after the newline.
    texts = stream.split("\n")
    assert texts[0] == "".join(f"<{k}>" for k in range(72))
    assert texts[1:11] == [f"{i}+1={i + 1}" for i in range(10)]
    assert texts[11] == "".join(f"<{k}>" for k in range(72, 144))
    assert len(blocks) == 7201


def test_training_stream_of_a_text_file_is_byte_exact(tmp_path):
    path = _write(tmp_path, "abcdefghij" * 2)  # 20 characters: 18 to train on, 2 held out
    cfg = DataConfig(format="plain", text_file=str(path), text_chunk=4, text_chunks=2, text_blocks=2)
    text = read_text(cfg)
    assert (text.train, text.heldout) == ("abcdefghijabcdefgh", "ij")
    problems = [Problem("+", 1, 2), Problem("+", 3, 4), Problem("+", 5, 6)]
    assert training_stream(cfg, problems, text) == "abcdefgh\n1+2=3\nijabcdef\n3+4=7\n5+6=11\n"
    # Without text: the samples after one newline, as before.
    assert training_stream(cfg, problems) == "\n1+2=3\n3+4=7\n5+6=11\n"


def test_plain_and_scratchpad_samples_follow_the_text_in_each_block(tmp_path):
    path = _write(tmp_path, "abcdefghij" * 2)
    cfg = DataConfig(
        format="plain", mix_formats=["reverse"], text_file=str(path), text_chunk=4, text_chunks=1, text_blocks=2
    )
    problems = [Problem("+", 1, 2), Problem("+", 3, 4), Problem("+", 5, 6)]
    # Block 0: a chunk, a newline, 1 plain sample, then the same problem reversed; block 1: the other two.
    assert training_stream(cfg, problems, read_text(cfg)) == (
        "abcd\n1+2=3\n$1+2=3$\nefgh\n3+4=7\n5+6=11\n$3+4=7$\n$5+6=11$\n"
    )
    # Without text: the same blocks, after one newline.
    no_text = DataConfig(format="plain", mix_formats=["reverse"], text_blocks=2)
    assert training_stream(no_text, problems) == "\n1+2=3\n$1+2=3$\n3+4=7\n5+6=11\n$3+4=7$\n$5+6=11$\n"


def test_mixed_formats_train_and_fit_the_longest_sample(tmp_path):
    from arithlab.build import resolve

    cfg = tiny_config("train.objective=stream", "data.mix_formats=[simplified]", "train.position_offset=0")
    splits = build_splits(cfg.data)
    assert resolve(cfg, splits).model.block_size == 256  # the default stream context holds both
    small = tiny_config("train.objective=stream", "data.mix_formats=[simplified]", "model.block_size=40")
    with pytest.raises(ArithlabError, match="block_size"):
        resolve(small, splits)
    with pytest.raises(ArithlabError, match="data.mix_formats"):
        resolve(tiny_config("data.mix_formats=[simplified]"), splits)  # objective answer
    with pytest.raises(ArithlabError, match="simplified"):
        mul = tiny_config(
            "train.objective=stream", "data.operation=mul", "data.sampling=uniform", "data.mix_formats=[simplified]"
        )
        resolve(mul, build_splits(mul.data))


def test_held_out_text_is_the_last_share_of_the_file(tmp_path):
    cfg = DataConfig(text_file=str(_write(tmp_path, "x" * 90 + "y" * 10)), text_heldout=0.1)
    text = read_text(cfg)
    assert text.train == "x" * 90 and text.heldout == "y" * 10


@pytest.mark.parametrize(("content", "message"), [(None, "cannot read text file"), ("", "empty"), (" \n\n", "empty")])
def test_missing_or_empty_text_file_is_a_one_line_error_naming_it(tmp_path, content, message):
    path = tmp_path / "shakespeare.txt"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ArithlabError) as info:
        read_text(DataConfig(text_file=str(path)))
    assert str(path) in str(info.value) and message in str(info.value)
    assert "\n" not in str(info.value)


def test_text_mixing_needs_the_stream_objective(tmp_path):
    from arithlab.trainer import train

    with pytest.raises(ArithlabError, match="train.objective: stream"):
        train(tiny_config(f"data.text_file={_write(tmp_path, VERSE)}"), tmp_path / "run", progress=False)


def test_vocabulary_grows_to_cover_the_text_and_round_trips(tmp_path):
    tok = CharTokenizer().covering(VERSE)
    assert tok.chars == DEFAULT_CHARS + "\té"  # the fixed ids never move
    assert tok.decode(tok.encode(VERSE)) == VERSE
    tok.save(tmp_path / "vocab.json")
    again = CharTokenizer.load(tmp_path / "vocab.json")
    assert again.chars == tok.chars and again.encode(VERSE) == tok.encode(VERSE)
    assert CharTokenizer().covering("plain ascii\n").chars == DEFAULT_CHARS


TEXT_OVERRIDES = [
    "name=text",
    "train.objective=stream",
    "model.block_size=64",
    "train.position_offset=0",
    "train.batch_size=32",
    "train.max_iters=100",
    "train.eval_interval=50",
    "train.threads=1",
    "data.n_train=500",
    "data.n_val=20",
    "data.n_test=50",
    "data.text_chunk=32",
    "data.text_chunks=4",
    "data.text_blocks=50",
]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    from arithlab.trainer import train

    folder = tmp_path_factory.mktemp("text")
    corpus = _write(folder, VERSE * 60)
    cfg = tiny_config(*TEXT_OVERRIDES, f"data.text_file={corpus}")
    return train(cfg, folder / "run", progress=False), corpus


def test_text_run_records_perplexity_and_its_grown_vocabulary(text_run):
    run_dir, corpus = text_run
    rows = [json.loads(line) for line in (run_dir / rundir.METRICS).read_text().splitlines()]
    assert [r["iter"] for r in rows] == [50, 100]
    assert all(math.isfinite(r["text_perplexity"]) for r in rows)
    summary = rundir.read_json(run_dir / rundir.EVAL)
    assert math.isfinite(summary["text_perplexity"]) and "accuracy" in summary
    assert CharTokenizer.load(run_dir / rundir.VOCAB).chars == DEFAULT_CHARS + "\té"
    data = rundir.read_json(run_dir / rundir.DATA)["text"]
    assert data["file"] == str(corpus) and data["vocab_size"] == 98 and data["chunks_in_stream"] == 200
    assert (run_dir / rundir.TEXT_HELDOUT).read_text(encoding="utf-8") == read_text(
        DataConfig(text_file=str(corpus))
    ).heldout


def test_trained_text_run_has_lower_perplexity_than_at_initialization(text_run):
    run_dir, _ = text_run
    run = load_run(run_dir, device="cpu")
    trained = run.perplexity()
    torch.manual_seed(run.config.train.seed)
    fresh = GPT(build.gpt_config(run.config, run.tokenizer))
    initial = perplexity(fresh, run.tokenizer, (run_dir / rundir.TEXT_HELDOUT).read_text(encoding="utf-8"))
    assert math.isfinite(trained) and math.isfinite(initial)
    assert initial > 50  # about the vocabulary size: no knowledge yet
    assert trained < initial / 4
    assert trained == pytest.approx(rundir.read_json(run_dir / rundir.EVAL)["text_perplexity"], rel=1e-4)


def test_eval_of_a_text_run_prints_its_perplexity(text_run, capsys):
    run_dir, _ = text_run
    assert main(["eval", str(run_dir)]) == 0
    assert "text perplexity" in capsys.readouterr().out


def test_resuming_a_text_run_whose_text_changed_is_an_error(tmp_path):
    from arithlab.trainer import train

    corpus = _write(tmp_path, VERSE * 10)
    cfg = tiny_config(*TEXT_OVERRIDES, "train.max_iters=2", "train.eval_interval=2", f"data.text_file={corpus}")
    run_dir = train(cfg, tmp_path / "run", progress=False)
    (run_dir / rundir.EVAL).unlink()
    train(cfg, run_dir, resume=True, progress=False)  # same text: finishes again
    corpus.write_text(VERSE * 11)
    (run_dir / rundir.EVAL).unlink()
    with pytest.raises(ArithlabError, match="changed"):
        train(cfg, run_dir, resume=True, progress=False)


def test_download_without_network_says_which_file_to_pass(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["data", "text", "--download"]) == 2
    err = capsys.readouterr().err
    dest = tmp_path / "cache" / "arithlab" / "tinyshakespeare.txt"
    assert err.count("\n") == 1 and "Traceback" not in err
    assert SHAKESPEARE_URL in err and f"data.text_file={dest}" in err


def test_download_saves_the_text_in_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(VERSE.encode()))
    assert main(["data", "text", "--download"]) == 0
    dest = tmp_path / "cache" / "arithlab" / "tinyshakespeare.txt"
    assert dest.read_text(encoding="utf-8") == VERSE
    assert f"data.text_file={dest}" in capsys.readouterr().out
    assert main(["data", "text", str(dest)]) == 0
    assert "'\\té'" in capsys.readouterr().out
