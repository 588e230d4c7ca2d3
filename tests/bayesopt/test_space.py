"""Search spaces: encoding, decoding, validation, persistence."""

from __future__ import annotations

import decimal
import enum
import json
import math
import warnings

import numpy as np
import pytest

from bayesopt import Categorical, Float, Int, Optimizer, Space, minimize

# --- encode / decode round trips ------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "value", "code"),
    [
        (Float(-5.0, 10.0), -5.0, 0.0),
        (Float(-5.0, 10.0), 10.0, 1.0),
        (Float(-5.0, 10.0), 2.5, 0.5),
        (Float(1e-5, 1e-1, log=True), 1e-3, 0.5),
        (Float(1e-5, 1e-1, log=True), 1e-5, 0.0),
        (Float(0.0, 1.0, step=0.25), 0.75, 0.75),
        (Int(1, 5), 3, 0.5),
        (Int(0, 10, step=2), 4, 0.4),
        (Int(1, 100, log=True), 10, 0.5),
    ],
)
def test_numeric_encode_and_round_trip(param, value, code):
    assert param.encode(value) == pytest.approx(code, abs=1e-12)
    back = param.decode(param.encode(value))
    assert back == pytest.approx(value, rel=1e-12)
    assert type(back) is type(value)


@pytest.mark.parametrize(
    ("param", "u", "expected"),
    [
        (Float(0.0, 1.0, step=0.25), 0.3, 0.25),
        (Float(0.0, 1.0, step=0.25), 0.4, 0.5),
        (Float(-1.0, 1.0, step=0.5), 0.7, 0.5),  # -1 + 0.7 * 2 = 0.4
        (Int(1, 4), 0.4, 2),  # 1 + 0.4 * 3 = 2.2
        (Int(1, 4), 0.6, 3),  # 2.8
        (Int(0, 10, step=2), 0.35, 4),  # 3.5 -> grid point 4
        (Int(0, 10, step=2), 0.25, 2),  # 2.5 -> grid point 2
    ],
)
def test_decode_snaps_to_grid(param, u, expected):
    v = param.decode(u)
    assert v == expected
    assert type(v) is type(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # The geometric midpoint of 3 and 4 is sqrt(12) = 3.464: rounding in log space
        # would give 4, rounding in the user's units gives 3.
        (3.48, 3),
        (3.52, 4),
        (31.4, 31),
        (31.6, 32),
        (1.49, 1),
    ],
)
def test_log_int_rounds_in_user_units(value, expected):
    p = Int(1, 100, log=True)
    u = math.log(value) / math.log(100)
    assert p.decode(u) == expected
    assert type(p.decode(u)) is int
    # the model sees the rounded value
    assert p.encode(p.decode(u)) == pytest.approx(math.log(expected) / math.log(100), abs=1e-12)


def test_categorical_mixed_json_scalars_are_distinct():
    choices = ["a", 1, 1.0, True, None, 2.5, False, 0]
    p = Categorical(choices)
    assert p.choices == tuple(choices)
    assert [p.encode(c) for c in choices] == [float(i) for i in range(len(choices))]
    for i, c in enumerate(choices):
        back = p.decode(float(i))
        assert back == c
        assert type(back) is type(c)
    assert p.decode(3.0) is True
    assert type(p.decode(1.0)) is int
    assert type(p.decode(2.0)) is float
    assert p.decode(4.0) is None
    # codes are rounded and clipped
    assert p.decode(0.4) == "a"
    assert p.decode(2.6) is True
    assert p.decode(-3.0) == "a"
    assert p.decode(99.0) == 0


@pytest.mark.parametrize(
    ("value", "index"),
    [(1, 1), (1.0, 2), (True, 3), (None, 4), (False, 6), (0, 7)],
)
def test_categorical_validate_keeps_types_apart(value, index):
    p = Categorical(["a", 1, 1.0, True, None, 2.5, False, 0])
    got = p.validate("c", value)
    assert got == value
    assert type(got) is type(value)
    assert p.encode(value) == float(index)


@pytest.mark.parametrize(("choices", "value"), [([True, False], 1), ([1, 2], True), ([1, 2], 1.0)])
def test_categorical_validate_rejects_lookalikes(choices, value):
    with pytest.raises(ValueError, match=rf"'flag'.*{value!r}"):
        Categorical(choices).validate("flag", value)


def test_space_decode_gives_plain_python_types():
    space = Space(
        {
            "x": Float(-5.0, 10.0),
            "lr": Float(1e-5, 1e-1, log=True),
            "s": Float(0.0, 1.0, step=0.1),
            "n": Int(1, 4),
            "m": Int(1, 1000, log=True),
            "c": Categorical(["relu", 3, None]),
        }
    )
    for row in (
        [0.3, 0.7, 0.44, 0.6, 0.5, 1.0],
        np.array([0.3, 0.7, 0.44, 0.6, 0.5, 1.0]),
        [np.float32(0.9), np.float64(0.1), np.float64(1.0), np.float64(0.0), 0.99, 2.2],
    ):
        p = space.decode(list(row))
        assert list(p) == ["x", "lr", "s", "n", "m", "c"]
        for name in ("x", "lr", "s"):
            assert type(p[name]) is float, name
        for name in ("n", "m"):
            assert type(p[name]) is int, name
        assert p == space.validate(p)
        # decoding is idempotent: what the model sees is what the user gets
        assert space.decode(space.encode(p)) == p


def test_from_unit_gives_plain_types_and_equal_categorical_shares():
    space = Space({"x": Float(0.0, 2.0), "n": Int(0, 3), "c": Categorical(["a", "b", "c"])})
    p = space.from_unit([0.5, 0.5, 0.5])
    assert p == {"x": 1.0, "n": 2, "c": "b"}  # 0 + 0.5 * 3 = 1.5 rounds half to even
    assert type(p["x"]) is float and type(p["n"]) is int
    assert [space.from_unit([0.0, 0.0, u])["c"] for u in (0.0, 0.33, 0.34, 0.66, 0.67, 1.0)] == [
        "a",
        "a",
        "b",
        "b",
        "c",
        "c",
    ]


# --- bounds are inclusive ---------------------------------------------------------------


@pytest.mark.parametrize(
    "param",
    [
        Float(-5.0, 10.0),
        Float(1e-5, 1e-1, log=True),
        Float(0.001, 7.3, log=True),
        Float(0.1, 0.7, step=0.2),
        Int(1, 4),
        Int(1, 100, log=True),
        Int(3, 17, log=True),
        Int(-10, 10, step=5),
    ],
)
def test_bounds_are_inclusive(param):
    assert param.decode(0.0) == param.low
    assert param.decode(1.0) == param.high
    assert param.decode(-0.5) == param.low
    assert param.decode(1.5) == param.high
    assert param.validate("p", param.low) == param.low
    assert param.validate("p", param.high) == param.high
    assert type(param.decode(0.0)) is type(param.decode(1.0))


def test_grids_of_discrete_parameters():
    assert Int(1, 4).grid() == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert Float(0.0, 1.0, step=0.25).grid() == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert Float(0.0, 1.0).grid() is None
    assert Categorical(["a", "b", "c"]).grid() == [0.0, 1.0, 2.0]
    space = Space({"x": Float(0, 1), "n": Int(1, 4), "c": Categorical([1, 2])})
    assert space.bounds() == [(0.0, 1.0), (0.0, 1.0), (0.0, 1.0)]
    assert space.categorical_columns() == {2: 2}
    assert list(space.discrete_columns()) == [1]
    assert Space({"n": Int(1, 4), "c": Categorical([1, 2, 3])}).n_combinations() == 12
    assert space.n_combinations() == math.inf


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        # low >= high
        (lambda: Float(1.0, 1.0), ValueError, r"low=1\.0, high=1\.0"),
        (lambda: Float(2.0, -1.0), ValueError, r"low=2\.0, high=-1\.0"),
        (lambda: Int(3, 3), ValueError, r"low=3, high=3"),
        (lambda: Int(5, 2), ValueError, r"low=5, high=2"),
        # non-finite bounds
        (lambda: Float(0.0, math.inf), ValueError, r"`high`.*inf"),
        (lambda: Float(-math.inf, 0.0), ValueError, r"`low`.*-inf"),
        (lambda: Float(math.nan, 1.0), ValueError, r"`low`.*nan"),
        (lambda: Int(0, math.inf), ValueError, r"`high`.*inf"),
        # not a number
        (lambda: Float("0", 1.0), TypeError, r"`low`.*'0'"),
        (lambda: Float(0.0, None), TypeError, r"`high`.*None"),
        (lambda: Float(False, 1.0), TypeError, r"`low`.*False"),
        # log scale with low <= 0
        (lambda: Float(0.0, 1.0, log=True), ValueError, r"log.*low=0\.0"),
        (lambda: Float(-1.0, 1.0, log=True), ValueError, r"log.*low=-1\.0"),
        (lambda: Int(0, 10, log=True), ValueError, r"log.*low=0"),
        # non-integral Int bounds
        (lambda: Int(0.5, 3), ValueError, r"`low`.*0\.5"),
        (lambda: Int(0, 2.5), ValueError, r"`high`.*2\.5"),
        # steps
        (lambda: Float(0.0, 1.0, step=0.3), ValueError, r"step=0\.3.*\[0\.0, 1\.0\]"),
        (lambda: Int(0, 10, step=3), ValueError, r"step=3.*\[0, 10\]"),
        (lambda: Float(0.0, 1.0, step=0.0), ValueError, r"`step`.*0\.0"),
        (lambda: Float(0.0, 1.0, step=-0.5), ValueError, r"`step`.*-0\.5"),
        (lambda: Int(0, 10, step=2.5), ValueError, r"`step`.*2\.5"),
        # categorical choices
        (lambda: Categorical([]), ValueError, r"`choices`.*empty"),
        (lambda: Categorical(()), ValueError, r"`choices`.*empty"),
        (lambda: Categorical(["a", "b", "a"]), ValueError, r"duplicate choice 'a'"),
        (lambda: Categorical([1, 2, 1]), ValueError, r"duplicate choice 1\b"),
        (lambda: Categorical([None, None]), ValueError, r"duplicate choice None"),
        (lambda: Categorical([0.5, 0.5]), ValueError, r"duplicate choice 0\.5"),
        (lambda: Categorical([True, True]), ValueError, r"duplicate choice True"),
        (lambda: Categorical([[1, 2], 3]), TypeError, r"JSON scalars.*\[1, 2\].*list"),
        (lambda: Categorical([{"a": 1}]), TypeError, r"JSON scalars.*\{'a': 1\}.*dict"),
        (lambda: Categorical([(1,)]), TypeError, r"JSON scalars.*\(1,\).*tuple"),
        (lambda: Categorical([b"x"]), TypeError, r"JSON scalars.*b'x'.*bytes"),
        (lambda: Categorical([1 + 2j]), TypeError, r"JSON scalars.*\(1\+2j\).*complex"),
        (lambda: Categorical([1.0, math.nan]), ValueError, r"finite.*nan"),
        (lambda: Categorical("abc"), TypeError, r"`choices`.*'abc'"),
        (lambda: Categorical(3), TypeError, r"`choices`.*3"),
        # spaces
        (lambda: Space({}), ValueError, r"empty"),
        (lambda: Space([Float(0, 1)]), TypeError, r"dict of parameters"),
        (lambda: Space({"x": (0, 1)}), TypeError, r"'x'.*\(0, 1\)"),
        (lambda: Space({"": Float(0, 1)}), TypeError, r"names.*''"),
        (lambda: Space({3: Float(0, 1)}), TypeError, r"names.*3"),
    ],
)
def test_bad_space_input_is_rejected_with_a_clear_message(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


SPACE = Space(
    {
        "x": Float(-5.0, 10.0),
        "s": Float(0.0, 1.0, step=0.25),
        "n": Int(1, 4),
        "c": Categorical(["relu", "tanh", None]),
    }
)
GOOD = {"x": 0.0, "s": 0.5, "n": 2, "c": "tanh"}


@pytest.mark.parametrize(
    ("change", "exc", "match"),
    [
        ({"x": 10.5}, ValueError, r"'x'.*10\.5"),
        ({"x": -5.000001}, ValueError, r"'x'.*-5\.000001"),
        ({"x": math.nan}, ValueError, r"'x'.*nan"),
        ({"x": math.inf}, ValueError, r"'x'.*inf"),
        ({"x": "1.0"}, TypeError, r"'x'.*'1\.0'"),
        ({"x": None}, TypeError, r"'x'.*None"),
        ({"x": True}, TypeError, r"'x'.*True"),
        ({"s": 0.3}, ValueError, r"'s'.*0\.3"),
        ({"n": 2.5}, ValueError, r"'n'.*2\.5"),
        ({"n": 5}, ValueError, r"'n'.*5"),
        ({"n": 0}, ValueError, r"'n'.*0"),
        ({"c": "sigmoid"}, ValueError, r"'c'.*'sigmoid'"),
        ({"c": ["relu"]}, ValueError, r"'c'.*\['relu'\]"),
        ({"c": 0}, ValueError, r"'c'.*0"),
    ],
)
def test_validate_rejects_values_outside_the_space(change, exc, match):
    with pytest.raises(exc, match=match):
        SPACE.validate({**GOOD, **change})


def test_validate_rejects_unknown_and_missing_names():
    with pytest.raises(ValueError, match=r"unknown.*'y'"):
        SPACE.validate({**GOOD, "y": 1.0})
    with pytest.raises(ValueError, match=r"missing.*'n'"):
        SPACE.validate({k: v for k, v in GOOD.items() if k != "n"})
    with pytest.raises(TypeError, match=r"dict.*\[1, 2\]"):
        SPACE.validate([1, 2])


def test_validate_returns_plain_values_in_column_order():
    got = SPACE.validate({"c": None, "n": 3.0, "s": 1, "x": 2})
    assert list(got) == ["x", "s", "n", "c"]
    assert got == {"x": 2.0, "s": 1.0, "n": 3, "c": None}
    assert type(got["x"]) is float and type(got["s"]) is float and type(got["n"]) is int


# --- persistence and comparison ---------------------------------------------------------------


def test_to_json_from_json_round_trip():
    space = Space(
        {
            "x": Float(-5.0, 10.0),
            "lr": Float(1e-5, 1e-1, log=True),
            "s": Float(0.0, 1.0, step=0.125),
            "n": Int(1, 4),
            "m": Int(2, 512, log=True),
            "k": Int(0, 20, step=5),
            "c": Categorical(["a", 1, 1.0, True, None]),
        }
    )
    text = json.dumps(space.to_json())
    for data in (space.to_json(), text, json.loads(text), space.dumps()):
        back = Space.from_json(data)
        assert back == space
        assert back.names == space.names
        assert back.diff(space) == []
        assert back.to_json() == space.to_json()
        assert back.params == space.params
        assert [type(c) for c in back.params["c"].choices] == [str, int, float, bool, type(None)]
        # the rebuilt space encodes and decodes identically
        row = [0.3, 0.7, 0.5, 0.6, 0.5, 0.55, 3.0]
        assert back.decode(row) == space.decode(row)


def test_from_json_rejects_unknown_parameter_type():
    with pytest.raises(ValueError, match=r"'wavelet'.*'w'"):
        Space.from_json({"w": {"type": "wavelet", "low": 0, "high": 1}})


def test_diff_names_each_difference():
    a = Space({"x": Float(0.0, 1.0), "n": Int(1, 4), "c": Categorical(["a", "b"])})
    assert a.diff(a) == []
    assert a.diff(Space.from_json(a.to_json())) == []

    (d,) = a.diff(Space({"x": Float(0.0, 2.0), "n": Int(1, 4), "c": Categorical(["a", "b"])}))
    assert "'x'" in d and "1.0" in d and "2.0" in d

    (d,) = a.diff(
        Space({"x": Float(0.0, 1.0), "n": Int(1, 4, log=True), "c": Categorical(["a", "b"])})
    )
    assert "'n'" in d

    diffs = a.diff(Space({"x": Float(0.0, 1.0), "n": Int(1, 4), "z": Categorical(["a", "b"])}))
    assert len(diffs) == 2
    assert any("'c'" in d for d in diffs) and any("'z'" in d for d in diffs)

    (d,) = a.diff(Space({"n": Int(1, 4), "x": Float(0.0, 1.0), "c": Categorical(["a", "b"])}))
    assert "order" in d

    (d,) = a.diff(Space({"x": Float(0.0, 1.0), "n": Int(1, 4), "c": Categorical(["b", "a"])}))
    assert "'c'" in d


@pytest.mark.parametrize(
    ("stored", "given"),
    [
        ([0, 1], [False, True]),
        ([1, 2], [1.0, 2.0]),
        (["a", 1], ["a", True]),
    ],
)
def test_categorical_choices_of_different_json_types_are_a_different_space(stored, given):
    # True, 1 and 1.0 are distinct choices, so a space that swaps one for another differs.
    a = Space({"c": Categorical(stored)})
    b = Space({"c": Categorical(given)})
    assert a != b
    (d,) = a.diff(b)
    assert "'c'" in d


def test_logit_float_round_trips_and_spreads_the_tails():
    p = Float(0.001, 0.999, logit=True)
    assert p.encode(0.5) == pytest.approx(0.5)
    assert p.decode(p.encode(0.01)) == pytest.approx(0.01, rel=1e-12)
    # equal steps in logit units: 0.01 and 0.99 are symmetric around the centre
    assert p.encode(0.01) == pytest.approx(1.0 - p.encode(0.99))
    # the tail gets far more of the unit interval than on a linear scale
    assert p.encode(0.01) > 0.15
    restored = Space.from_json(Space({"f": p}).to_json())
    assert restored.params["f"] == p


@pytest.mark.parametrize(
    "kwargs",
    [dict(low=0.0, high=0.5), dict(low=0.1, high=1.0), dict(low=0.1, high=0.5, log=True)],
)
def test_logit_float_rejects_bounds_outside_the_open_unit_interval(kwargs):
    with pytest.raises(ValueError, match="logit"):
        Float(logit=True, **kwargs)


# --- categorical choices: numpy scalars, Enums, canonical types ------------------------


class Color(str, enum.Enum):  # noqa: UP042 - the form users write, not only StrEnum
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Act(enum.StrEnum):
    RELU = "relu"
    TANH = "tanh"


class Plain(enum.Enum):
    A = "a"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (list(np.linspace(0, 1, 5)), [0.0, 0.25, 0.5, 0.75, 1.0]),
        ([np.float32(0.5), np.float64(2.0)], [0.5, 2.0]),
        ([np.int64(3), np.int8(-1), np.uint64(2**63)], [3, -1, 2**63]),
        ([np.bool_(True), np.bool_(False)], [True, False]),
        ([np.str_("relu"), np.str_("tanh")], ["relu", "tanh"]),
        (list(np.array(["a", "b"])), ["a", "b"]),
        ([np.int64(1), np.float64(1.0), np.bool_(True), None], [1, 1.0, True, None]),
    ],
)
def test_categorical_turns_numpy_scalars_into_python_scalars(given, expected):
    p = Categorical(given)
    assert p.choices == tuple(expected)
    assert [type(c) for c in p.choices] == [type(c) for c in expected]
    # the JSON form is the Python scalar, and a value read back matches its choice
    back = json.loads(json.dumps(p.to_json()))["choices"]
    assert [p.encode(v) for v in back] == [float(i) for i in range(len(expected))]
    assert [type(p.validate("c", v)) for v in back] == [type(c) for c in expected]


@pytest.mark.parametrize("enum_cls", [Color, Act, Level])
def test_categorical_keeps_enum_members_and_matches_them_by_value(enum_cls):
    members = list(enum_cls)
    p = Categorical(members)
    assert p.choices == tuple(members)
    assert all(type(c) is enum_cls for c in p.choices)
    assert p.decode(1.0) is members[1]
    assert p.from_unit(0.0) is members[0]
    # its JSON form is its value; the value read back from storage maps to the member
    values = [m.value for m in members]
    assert p.to_json() == {"type": "categorical", "choices": values}
    assert json.loads(Space({"c": p}).dumps())["c"]["choices"] == values
    for i, (m, v) in enumerate(zip(members, values, strict=True)):
        assert p.validate("c", v) is m
        assert p.validate("c", m) is m
        assert p.encode(v) == p.encode(m) == float(i)
    # a space declared with the Enum equals its stored (plain-value) form
    assert Space.from_json(Space({"c": p}).dumps()) == Space({"c": p})


def test_categorical_validate_accepts_numpy_scalars_of_the_choice_type():
    p = Categorical([0.5, 1, 1.0, True, "a"])
    assert p.validate("c", np.float64(0.5)) == 0.5
    assert type(p.validate("c", np.float64(0.5))) is float
    assert type(p.validate("c", np.int64(1))) is int
    assert type(p.validate("c", np.float32(1.0))) is float
    assert p.validate("c", np.bool_(True)) is True
    assert p.validate("c", np.str_("a")) == "a"
    assert p.encode(np.float64(1.0)) == 2.0
    # the type still matters: numpy's 0.5 is not the string "0.5", 1 is not True
    for value in (np.str_("0.5"), np.bool_(False), np.int64(2), np.float64(np.nan)):
        with pytest.raises(ValueError, match=r"'c'.*is not one of"):
            p.validate("c", value)
    with pytest.raises(ValueError, match=r"Categorical: value 'zz' is not one of"):
        p.encode("zz")


@pytest.mark.parametrize(
    ("choices", "match"),
    [
        ([1, np.int64(1)], r"duplicate choice np\.int64\(1\) .*same int value as 1\)"),
        (
            [0.5, np.float64(0.5)],
            r"duplicate choice np\.float64\(0\.5\).*same float value as 0\.5",
        ),
        (["a", np.str_("a")], r"duplicate choice np\.str_\('a'\).*same str value as 'a'"),
        (
            [True, np.bool_(True)],
            r"duplicate choice np\.True_ in .*same bool value as True",
        ),
        ([Color.RED, "red"], r"duplicate choice 'red'.*same str value as <Color\.RED"),
        ([Level.LOW, 1], r"duplicate choice 1 .*same int value as <Level\.LOW"),
        ([0.0, -0.0], r"duplicate choice -0\.0"),
    ],
)
def test_categorical_refuses_choices_that_are_the_same_canonical_value(choices, match):
    with pytest.raises(ValueError, match=match):
        Categorical(choices)


@pytest.mark.parametrize(
    ("choice", "match"),
    [
        (Plain.A, r"Enum choice needs a str, int or float mixin.*Plain\.A.*type Plain"),
        (decimal.Decimal("0.5"), r"Decimal\('0\.5'\) of type Decimal"),
        (np.datetime64("2020-01-01"), r"of type datetime64"),
        (np.complex128(1j), r"of type complex128"),
        (np.array([1.0]), r"of type ndarray"),
        (type("MyStr", (str,), {})("x"), r"'x' of type MyStr"),
    ],
)
def test_categorical_refuses_other_types_naming_the_value_and_its_type(choice, match):
    with pytest.raises(TypeError, match=match):
        Categorical(["ok", choice])


def test_categorical_refuses_non_finite_numpy_floats():
    with pytest.raises(ValueError, match=r"finite.*inf"):
        Categorical([np.float64(1.0), np.float64(np.inf)])


def test_categoricals_of_lookalike_choices_are_not_equal():
    assert Categorical([1, 2]) != Categorical([True, 2])
    assert Categorical([1, 2]) != Categorical([1.0, 2])
    assert Categorical([1, 2]) == Categorical([np.int64(1), 2])
    assert hash(Categorical(["a", 2])) == hash(Categorical([np.str_("a"), 2]))
    with pytest.raises(AttributeError, match="immutable"):
        Categorical([1]).choices = (2,)


def test_lookalike_choices_stay_distinct_through_sqlite(tmp_path):
    # 1 == 1.0 == True in Python; the stored study must keep them apart both ways.
    url = f"sqlite:///{tmp_path / 'study.db'}"
    opt = Optimizer({"c": Categorical([1, 1.0, True])}, storage=url, seed=0)
    for v in (True, 1.0, 1):
        opt.enqueue({"c": v})
    for i in range(3):
        t = opt.ask()
        opt.tell(t, float(i))
    opt.add({"c": np.float64(1.0)}, 5.0)
    del opt
    loaded = Optimizer.load(url)
    got = [(type(t.params["c"]), t.params["c"]) for t in loaded.trials]
    assert got == [(bool, True), (float, 1.0), (int, 1), (float, 1.0)]
    assert loaded.space.params["c"].choices == (1, 1.0, True)
    assert [type(c) for c in loaded.space.params["c"].choices] == [int, float, bool]
    assert [loaded.space.encode(t.params)[0] for t in loaded.trials] == [2.0, 1.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "choices",
    [list(np.linspace(0, 1, 5)), list(Color), [np.str_("a"), np.str_("b"), np.str_("c")]],
    ids=["linspace", "str-enum", "np-str"],
)
def test_numpy_and_enum_categoricals_keep_the_model_on_through_sqlite(tmp_path, choices):
    # Regression: values read back from the database never matched np.float64 or Enum
    # choices, so every model proposal fell back to Sobol (a RuntimeWarning only).
    url = f"sqlite:///{tmp_path / 'study.db'}"
    lookup = {c: k for k, c in enumerate(choices)}

    def f(p):
        assert p["c"] in choices
        return (p["x"] - 0.3) ** 2 + (lookup[p["c"]] - 1) ** 2

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        opt = minimize(
            f,
            {"x": Float(0.0, 1.0), "c": Categorical(choices)},
            n_trials=12,
            n_initial=4,
            seed=0,
            storage=url,
            progress=False,
        )
    sources = [t.attrs.get("source") for t in opt.trials]
    assert len(sources) == 12
    assert "fallback" not in sources
    assert sources[:4] == ["sobol"] * 4
    assert sources[4:] == ["model"] * 8
    # reopened with the declared space, the stored values map back to the choice objects
    again = Optimizer({"x": Float(0.0, 1.0), "c": Categorical(choices)}, storage=url, seed=0)
    kept = Categorical(choices).choices
    assert all(type(t.params["c"]) is type(kept[0]) for t in again.trials)
    assert type(again.best_trial.params["c"]) is type(kept[0])
