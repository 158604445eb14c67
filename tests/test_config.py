"""Run configuration: defaults, `--set` overrides, and the errors for bad keys, values, files."""

from __future__ import annotations

import pytest

from arithlab.config import CHOICES, Config, load_config
from arithlab.errors import ArithlabError


def test_defaults_load_as_the_quickstart_setup():
    cfg = load_config()
    assert cfg == Config()
    assert cfg.data.operation == "add" and cfg.data.format == "reverse" and cfg.data.digits == 3
    assert cfg.data.n_train == 10000 and cfg.data.exclude == []
    assert cfg.train.objective == "answer" and cfg.train.max_iters == 2000
    assert cfg.eval.reference_prompt is False


def test_set_overrides_change_only_their_keys():
    cfg = load_config(None, ["train.max_iters=5", "data.exclude=[527]"])
    assert cfg.train.max_iters == 5 and type(cfg.train.max_iters) is int
    assert cfg.data.exclude == [527]
    assert cfg.train.lr == Config().train.lr
    assert cfg.data.n_train == Config().data.n_train


def test_overrides_apply_on_top_of_a_yaml_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: mine\ndata:\n  digits: 5\n  n_train: 300\ntrain:\n  max_iters: 10\n")
    cfg = load_config(path, ["train.max_iters=7", "data.test_digits=6"])
    assert cfg.name == "mine"
    assert cfg.data.digits == 5 and cfg.data.n_train == 300
    assert cfg.train.max_iters == 7
    assert cfg.data.test_digits == 6
    assert cfg.data.format == "reverse"  # untouched keys keep their defaults


def test_exponent_without_dot_is_read_as_a_float():
    cfg = load_config(None, ["train.lr=3e-3"])
    assert cfg.train.lr == 0.003 and type(cfg.train.lr) is float


def test_exponent_without_dot_in_a_yaml_file_is_read_as_a_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 3e-3\n  min_lr_ratio: 1\n")
    cfg = load_config(path)
    assert cfg.train.lr == 0.003 and type(cfg.train.lr) is float
    assert cfg.train.min_lr_ratio == 1.0 and type(cfg.train.min_lr_ratio) is float


def test_optional_keys_take_null():
    cfg = load_config(None, ["data.test_digits=4", "model.n_layer=null"])
    assert cfg.data.test_digits == 4
    assert cfg.model.n_layer is None


def test_config_saves_and_loads_back(tmp_path):
    cfg = load_config(None, ["train.lr=3e-3", "data.exclude=[1, 2]", "name=saved"])
    path = tmp_path / "config.yaml"
    cfg.save(path)
    assert load_config(path) == cfg


def test_unknown_key_names_the_key_and_the_allowed_keys():
    with pytest.raises(ArithlabError) as info:
        load_config(None, ["train.max_iter=5"])
    message = str(info.value)
    assert "train.max_iter" in message
    for allowed in ("max_iters", "batch_size", "lr", "objective"):
        assert allowed in message


def test_unknown_section_names_the_sections():
    with pytest.raises(ArithlabError) as info:
        load_config(None, ["trainer.max_iters=5"])
    message = str(info.value)
    assert "trainer" in message
    for section in ("data", "model", "train", "eval"):
        assert section in message


@pytest.mark.parametrize(
    ("override", "key", "value"),
    [
        ("train.max_iters=abc", "train.max_iters", "abc"),
        ("train.max_iters=2.5", "train.max_iters", "2.5"),
        ("train.lr=fast", "train.lr", "fast"),
        ("model.bias=maybe", "model.bias", "maybe"),
        ("data.exclude=527", "data.exclude", "527"),
        ("data.exclude=[a]", "data.exclude", "a"),
        ("data.test_digits=many", "data.test_digits", "many"),
        ("train.compile=1", "train.compile", "1"),
    ],
)
def test_wrong_type_names_the_key_and_the_value(override, key, value):
    with pytest.raises(ArithlabError) as info:
        load_config(None, [override])
    message = str(info.value)
    assert key in message
    assert value in message


@pytest.mark.parametrize("key", sorted(CHOICES))
def test_bad_choice_names_the_allowed_values(key):
    with pytest.raises(ArithlabError) as info:
        load_config(None, [f"{key}=foo"])
    message = str(info.value)
    assert key in message and "foo" in message
    for allowed in CHOICES[key]:
        assert allowed in message


def test_bad_objective_names_answer_and_stream():
    with pytest.raises(ArithlabError, match="answer, packed, stream"):
        load_config(None, ["train.objective=foo"])


def test_override_without_equals_sign_is_an_error():
    with pytest.raises(ArithlabError, match="key=value"):
        load_config(None, ["train.max_iters"])


def test_section_given_a_scalar_is_an_error():
    with pytest.raises(ArithlabError, match="train"):
        load_config(None, ["train=5"])


def test_invalid_yaml_file_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  max_iters: [1, 2\n  lr: 3\n")
    with pytest.raises(ArithlabError) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_yaml_file_that_is_a_list_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- train\n- data\n")
    with pytest.raises(ArithlabError) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_config_file_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(ArithlabError) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_empty_yaml_file_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    with pytest.raises(ArithlabError, match=f"{path}: empty"):
        load_config(path)


def test_bad_key_in_a_yaml_file_is_an_error_naming_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  max_iters: many\n")
    with pytest.raises(ArithlabError, match="train.max_iters"):
        load_config(path)


def test_a_config_with_a_base_changes_only_the_keys_it_names(tmp_path):
    (tmp_path / "parent.yaml").write_text("data:\n  format: reverse\n  n_train: 500\ntrain:\n  lr: 0.002\n")
    (tmp_path / "sub").mkdir()
    child = tmp_path / "sub" / "child.yaml"
    child.write_text("base: ../parent.yaml\ndata:\n  n_train: 700\n")
    grandchild = tmp_path / "grandchild.yaml"
    grandchild.write_text("base: sub/child.yaml\ntrain:\n  max_iters: 9\n")
    cfg = load_config(grandchild, ["data.n_test=30"])
    assert (cfg.data.format, cfg.data.n_train, cfg.data.n_test) == ("reverse", 700, 30)
    assert (cfg.train.lr, cfg.train.max_iters) == (0.002, 9)


@pytest.mark.parametrize(
    "files, error",
    [
        (
            {"parent.yaml": "train:\n  max_iter: 5\n", "child.yaml": "base: parent.yaml\n"},
            r"parent\.yaml: unknown config key 'train\.max_iter'",
        ),
        ({"child.yaml": "base: absent.yaml\n"}, r"absent\.yaml: cannot read"),
        ({"child.yaml": "base: b.yaml\n", "b.yaml": "base: child.yaml\n"}, r"b\.yaml: base: child\.yaml makes a loop"),
        ({"child.yaml": "base: [parent.yaml]\n"}, r"child\.yaml: base: expected the path of a config file"),
    ],
    ids=["bad key in the base", "missing base", "loop", "not a path"],
)
def test_a_bad_base_is_an_error_naming_the_file_at_fault(tmp_path, files, error):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ArithlabError, match=error):
        load_config(tmp_path / "child.yaml")


def test_a_sweep_base_may_itself_have_a_base(tmp_path):
    from arithlab.experiments import load_sweep

    (tmp_path / "parent.yaml").write_text("data:\n  format: plain\n")
    (tmp_path / "child.yaml").write_text("base: parent.yaml\ndata:\n  n_train: 700\n")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("base: child.yaml\naxes:\n  train.seed: [0, 1]\n")
    _, points = load_sweep(sweep)
    assert [(p.config.data.format, p.config.data.n_train, p.config.train.seed) for p in points] == [
        ("plain", 700, 0),
        ("plain", 700, 1),
    ]


def _shipped_configs():
    from pathlib import Path

    import arithlab

    package = Path(arithlab.__file__).parent / "configs"
    repo = Path(__file__).resolve().parent.parent / "configs"
    return sorted([*package.glob("*.yaml"), *repo.glob("*.yaml"), *repo.glob("length/*.yaml")])


@pytest.mark.parametrize("path", _shipped_configs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_config_files_load_with_known_format_and_operation(path):
    from arithlab.formats import get_format
    from arithlab.tasks import operation

    cfg = load_config(path)
    assert get_format(cfg.data.format).name == cfg.data.format
    assert operation(cfg.data.operation).symbol in get_format(cfg.data.format).operations


def _shipped_sweeps():
    from pathlib import Path

    return sorted((Path(__file__).resolve().parent.parent / "configs" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", _shipped_sweeps(), ids=lambda p: p.name)
def test_shipped_sweep_files_load_with_every_point_checked(path):
    from arithlab.experiments import load_sweep
    from arithlab.formats import get_format
    from arithlab.tasks import operation

    _, points = load_sweep(path)
    assert len(points) >= 2
    for point in points:
        fmt = get_format(point.config.data.format)
        assert operation(point.config.data.operation).symbol in fmt.operations


def test_mistake_inside_a_yaml_file_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  max_iter: 5\n")
    with pytest.raises(ArithlabError, match=r"c\.yaml: unknown config key 'train\.max_iter'"):
        load_config(path)


def _numeric_keys():
    import dataclasses
    import typing

    from arithlab.config import DataConfig, EvalConfig, ModelConfig, TrainConfig

    for section, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig), ("eval", EvalConfig)):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if {int, float} & set(typing.get_args(hints[f.name]) or [hints[f.name]]):
                yield f"{section}.{f.name}"


def test_every_numeric_key_has_a_range():
    from arithlab.config import RANGES

    keys = set(_numeric_keys())
    assert len(keys) > 40 and keys == set(RANGES)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lr=0", "config key train.lr: 0.0 must be a finite number above 0"),
        ("model.lora_rank=-1", "config key model.lora_rank: -1 must be at least 0 (0: fine-tune every weight)"),
        ("data.lengths=[2, 0]", "config key data.lengths: [2, 0] must be lengths of at least 1 digit"),
        ("eval.shot_format=plian", "config key eval.shot_format: unknown format 'plian'"),
        ("data.mix_formats=[plian]", "config key data.mix_formats: unknown format 'plian'"),
        ("data.operations=[add, div]", "config key data.operations: unknown operation 'div'"),
    ],
)
def test_a_value_out_of_range_or_an_unknown_name_is_an_error_naming_the_key(override, message):
    with pytest.raises(ArithlabError) as info:
        load_config(None, [override])
    assert str(info.value).startswith(message)


def test_a_range_error_in_a_file_names_the_file_and_keys_that_tie_are_checked_after_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  batch_size: 0\n")
    with pytest.raises(ArithlabError, match=rf"^{path}: config key train.batch_size: 0 must be at least 1$"):
        load_config(path)
    path.write_text("train:\n  objective: answer\ndata:\n  mix_formats: [plain]\n")  # fixed by the override
    assert load_config(path, ["train.objective=stream"]).data.mix_formats == ["plain"]
