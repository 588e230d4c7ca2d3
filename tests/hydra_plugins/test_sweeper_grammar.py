"""Unit tests: Hydra's override grammar -> bayesopt parameters, and values -> overrides."""

from __future__ import annotations

import math

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from bayesopt import Categorical, Float, Int
from hydra_plugins.bayesopt_sweeper._grammar import format_value, parse_search_space


def _one(override: str):
    space = parse_search_space(None, [override])
    assert len(space.params) == 1
    return next(iter(space.params.values()))


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("x=interval(0, 1)", Float(0.0, 1.0)),
        ("x=interval(-2.5, 1e3)", Float(-2.5, 1000.0)),
        ("x=interval(1, 5)", Float(1.0, 5.0)),  # Hydra reads interval bounds as floats
        ("x=int(interval(1, 5))", Int(1, 5)),
        ("x=tag(log, interval(1e-5, 1e-1))", Float(1e-5, 1e-1, log=True)),
        ("x=tag(log, int(interval(8, 128)))", Int(8, 128, log=True)),
        ("x=range(1, 5)", Int(1, 4)),  # stop excluded
        ("x=range(0, 10, 2)", Int(0, 8, step=2)),
        ("x=range(0, 11, 2)", Int(0, 10, step=2)),
        ("x=range(5, 0, -1)", Int(1, 5)),
        ("x=shuffle(range(1, 5))", Int(1, 4)),
        ("x=tag(log, range(1, 9))", Int(1, 8, log=True)),
        ("x=range(0, 1, 0.25)", Float(0.0, 0.75, step=0.25)),  # float step: stepped Float
        ("x=range(0, 1, 0.1)", Float(0.0, 0.9, step=0.1)),
        ("x=float(range(1, 4))", Float(1.0, 3.0, step=1.0)),
        ("x=choice(relu, tanh)", Categorical(["relu", "tanh"])),
        ("x=relu,tanh,gelu", Categorical(["relu", "tanh", "gelu"])),
        ("x=shuffle(choice(a, b))", Categorical(["a", "b"])),
        ("x=choice(1, 2.5, 'a b', true)", Categorical([1, 2.5, "a b", True])),
    ],
)
def test_every_grammar_form(override, expected):
    assert _one(override) == expected


def test_float_step_grid_is_exact():
    param = _one("x=range(0, 1, 0.1)")
    values = [param.decode(param.encode(0.1 * k)) for k in range(10)]
    assert values == pytest.approx([0.1 * k for k in range(10)], abs=1e-12)
    assert max(values) == pytest.approx(0.9)


def test_list_choices_travel_verbatim():
    space = parse_search_space(None, ["layers=choice([64, 64], [128])"])
    assert space.raw == {"layers"}
    assert space.params["layers"] == Categorical(["[64,64]", "[128]"])
    assert space.overrides({"layers": "[64,64]"}) == ["layers=[64,64]"]
    parsed = OverridesParser.create().parse_overrides(space.overrides({"layers": "[64,64]"}))
    assert parsed[0].value() == [64, 64]


def test_command_line_overrides_params_and_plain_values_are_fixed():
    params = {
        "lr": "tag(log, interval(1e-5, 1e-1))",
        "layers": "range(1, 5)",
        "act": "choice(relu, tanh)",
        "epochs": 10,
    }
    space = parse_search_space(params, ["layers=range(2, 4)", "act=relu", "+extra=interval(0, 1)"])
    assert list(space.params) == ["extra", "layers", "lr"]  # sorted by name
    assert space.params["layers"] == Int(2, 3)
    assert space.params["lr"] == Float(1e-5, 1e-1, log=True)
    assert space.keys["extra"] == "+extra"
    assert sorted(space.fixed) == ["act=relu", "epochs=10"]
    overrides = space.overrides({"extra": 0.5, "layers": 3, "lr": 1e-3})
    assert overrides[:2] == space.fixed
    assert overrides[2:] == ["+extra=0.5", "layers=3", "lr=0.001"]


def test_delete_and_group_overrides_pass_through():
    space = parse_search_space({"x": "interval(0, 1)"}, ["~y", "db=mysql", "z@pkg=choice(1, 2)"])
    assert sorted(space.fixed) == ["db=mysql", "~y"]
    assert list(space.params) == ["x", "z@pkg"]
    assert space.keys["z@pkg"] == "z@pkg"


@pytest.mark.parametrize(
    "value",
    [
        0,
        -3,
        7,
        0.1,
        -2.5,
        1e-5,
        3.0e20,
        1.0,
        True,
        False,
        None,
        "relu",
        "adam_w",
        "a/b.c",
        "a b",
        "x,y",
        "it's",
        "1",
        "2.5",
        "null",
        "True",
        "nan",
        "",
        "[1]",
        "a=b",
        "back\\slash",
        "]",
        "x'y",
        "end\\",
        "${oc.env:HOME}",
        "${now:%H}",
        "a\\${x}",
        "\\\\${x}",
        "$${x}",
        "'${x}'",
        "+opt={_target_: shutil.copyfile, src: a, dst: b}",
    ],
)
def test_format_value_round_trips_through_hydra(value):
    """What the job's config holds is the value (OmegaConf resolves ``${`` in overrides)."""
    text = format_value(value)
    parsed = OverridesParser.create().parse_overrides([f"k={text}"])[0]
    assert not parsed.is_sweep_override()
    got = OmegaConf.create({"k": parsed.value()}).k
    assert type(got) is type(value)
    if isinstance(value, float):
        assert math.isclose(got, value, rel_tol=0, abs_tol=0)
    else:
        assert got == value


def test_overrides_come_from_declared_parameters_only():
    space = parse_search_space(None, ["x=interval(0, 1)", "act=choice(relu, 'a b')", "y=3"])
    assert space.overrides({"act": "a b", "x": 0.5}) == ["y=3", "act='a b'", "x=0.5"]
    for point, message in [
        ({"act": "relu", "x": 0.5, "evil": "yes"}, "unknown parameter"),
        ({"act": "relu"}, "missing parameter"),
        ({"act": "relu", "x": 1e9}, "'x': value 1000000000.0 is outside"),
        ({"act": "+opt={_target_: shutil.copyfile}", "x": 0.5}, "'act': value .* is not one of"),
    ]:
        with pytest.raises((TypeError, ValueError), match=message):
            space.overrides(point)


def test_format_value_rejects_containers():
    with pytest.raises(TypeError, match="JSON scalar"):
        format_value([1, 2])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("x=range(1, 2)", "has 1 value"),
        ("x=range(3, 1)", "has 0 value"),
        ("x=choice(a)", "at least two"),
        ("x=tag(grid, interval(0, 1))", "unknown tag"),
        ("x=tag(log, interval(0, 1))", "low > 0"),
        ("x=tag(log, range(0, 1, 0.1))", "integer bounds"),
        ("x=interval(2, 1)", "low < high"),
    ],
)
def test_bad_sweeps_are_refused_with_the_parameter_named(override, message):
    with pytest.raises(ValueError, match=message):
        parse_search_space(None, [override])


def test_nothing_to_optimize_is_an_error():
    with pytest.raises(ValueError, match="no parameter to optimize"):
        parse_search_space({"x": 3}, ["y=2"])


def test_params_entries_must_be_override_text_or_plain_values():
    with pytest.raises(TypeError, match="hydra.sweeper.params"):
        parse_search_space({"x": [1, 2]}, [])
