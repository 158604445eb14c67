"""Shared fixtures: one tiny model trained on 2-digit addition, once per test session."""

from __future__ import annotations

import pytest

from arithlab.config import load_config

# 2-digit addition, reverse format, the default recipe (balanced length pairs, shifted
# positions): small enough to learn in seconds on 2 CPU cores.
TINY_OVERRIDES = [
    "name=tiny",
    "data.digits=2",
    "data.n_train=2000",
    "data.n_val=100",
    "data.n_test=400",
    "model.preset=small",
    "model.n_layer=2",
    "train.batch_size=64",
    "train.max_iters=1000",
    "train.lr=4e-3",
    "train.position_offset=8",
    "train.warmup_iters=50",
    "train.eval_interval=200",
]  # threads: the default, the cores not busy (the suite shares its machine)


def tiny_config(*extra: str):
    return load_config(None, TINY_OVERRIDES + list(extra))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A run directory with a model that has learned 2-digit addition."""
    from arithlab.trainer import train

    return train(tiny_config(), tmp_path_factory.mktemp("runs") / "tiny", progress=False)
