"""surrogates.outcomes: the cutoffs of extreme outcomes (closed forms and invariances)."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from surrogates import outcomes
from surrogates.outcomes import MAX_SPAN, robust_bounds, winsorize

BIG = sys.float_info.max


def _t(values, column=True):
    y = torch.tensor(values, dtype=torch.float64)
    return y.reshape(-1, 1) if column else y


def test_tukey_fences_on_nine_values():
    # u = 1..9: q1 = u[2] = 3, q3 = u[6] = 7, IQR = 4; nothing lies beyond the fences
    low, high = robust_bounds(_t([9.0, 1, 5, 2, 8, 3, 7, 4, 6]))
    assert (outcomes.BAD_FENCE, outcomes.GOOD_FENCE) == (10.0, 1000.0)
    assert low == 3 - 10 * 4 and high == 7 + 1000 * 4
    assert robust_bounds(_t(range(1, 10)), bad_fence=0.5, good_fence=2.0) == (1.0, 15.0)


def test_values_below_the_fence_take_the_worst_value_kept():
    # u = (-100, -50, 1..9): q1 = u[(11 - 1) // 4] = u[2] = 1, q3 = u[8] = 7, IQR = 6;
    # the fence at 1.5 IQR is -8: -100 and -50 become 1, the smallest value above it
    Y = _t([-100.0, -50.0, *range(1, 10)])
    Z, info = winsorize(Y, bad_fence=1.5)
    assert (info.low, info.n_low, info.n_high) == (1.0, 2, 0)
    assert Z.reshape(-1).tolist() == [1.0, 1.0, *range(1, 10)]
    # with the default fence (1 - 60 = -59) only -100 is beyond it: it becomes -50
    Z, info = winsorize(Y)
    assert (info.low, info.n_low) == (-50.0, 1) and Z[0].item() == -50.0


@pytest.mark.parametrize("k", [5, 6, 7, 8, 13, 40, 101])
def test_quartiles_are_axs_outward_rounded_percentiles(k):
    # Ax's Tukey fences: numpy's 25th percentile rounded down and 75th rounded up
    u = np.sort(np.random.default_rng(k).normal(size=k))
    q1 = np.percentile(u, 25, method="lower")
    q3 = np.percentile(u, 75, method="higher")
    fence = q1 - 1.5 * (q3 - q1)
    low, high = robust_bounds(_t(u), bad_fence=1.5, good_fence=3.0)
    if u[0] < fence:  # then the worst value kept
        assert low == u[u >= fence - 1e-15].min()
    else:
        assert low == pytest.approx(fence, rel=1e-15, abs=1e-15)
    assert high == pytest.approx(q3 + 3.0 * (q3 - q1), rel=1e-15, abs=1e-15)


def test_a_repeated_penalty_counts_once():
    # 10 infeasible trials and 5 feasible ones: over distinct values u = (-max, 1..5),
    # q1 = u[1] = 1 and q3 = u[4] = 4, the fence is 1 - 10 * 3 = -29, and the penalty
    # becomes 1, the worst value kept (over all 15 values q1 would be the penalty)
    Y = _t([-BIG] * 10 + [1.0, 2, 3, 4, 5])
    Z, info = winsorize(Y)
    assert (info.low, info.n_low, info.n_high) == (1.0, 10, 0)
    assert Z[:10].eq(1.0).all() and torch.equal(Z[10:], Y[10:])
    # without the penalty nothing moves
    Z, info = winsorize(Y[10:])
    assert info.n_clipped == 0 and Z is not None and torch.equal(Z, Y[10:])


def test_an_extremely_good_value_is_lowered_to_the_far_fence_and_stays_the_best():
    Y = _t([1.0, 2, 3, 4, 5, 1e300])  # q1 = 2, q3 = 5 (u[ceil(3.75)] = u[4])
    Z, info = winsorize(Y)
    assert info.high == 5 + outcomes.GOOD_FENCE * 3 and info.n_high == 1
    assert Z[-1].item() == info.high and int(Z.argmax()) == 5


def test_fewer_than_five_distinct_values_are_not_fenced():
    # k = 4: q1 = min, q3 = max, so the fences lie outside the data
    Y = _t([0.0, 1.0, 2.0, 100.0])
    Z, info = winsorize(Y)
    assert info == outcomes.Clipped(low=-1000.0, high=100.0 + 1000 * 100, n_low=0, n_high=0)
    assert Z is Y


def test_the_span_guard_centres_on_the_median_of_distinct_values():
    # k = 4 cannot be fenced; the span guard keeps the values within MAX_SPAN / 2
    # of the median (1 + 2) / 2 = 1.5, and -1e300 takes the worst value kept
    Z, info = winsorize(_t([-1e300, 1.0, 2.0, 3.0]))
    assert (info.low, info.high, info.n_low) == (1.0, 1.5 + MAX_SPAN / 2, 1)
    assert Z.reshape(-1).tolist() == [1.0, 1.0, 2.0, 3.0]
    # an extreme good value among four: lowered to the window's edge, still the largest
    Z, info = winsorize(_t([-7.0, -5.0, -3.0, 1e300]))
    assert Z.reshape(-1).tolist() == [-7.0, -5.0, -3.0, -4.0 + MAX_SPAN / 2]
    # the two largest floats: the median is 0, both are kept apart and in order
    Z, info = winsorize(_t([BIG, -BIG]))
    assert (info.low, info.high) == (-MAX_SPAN / 2, MAX_SPAN / 2)
    assert Z.reshape(-1).tolist() == [MAX_SPAN / 2, -MAX_SPAN / 2]


@pytest.mark.parametrize("values", [[], [3.0], [2.0, 2.0, 2.0]])
def test_no_or_constant_data_have_no_cutoffs(values):
    Y = _t(values)
    Z, info = winsorize(Y)
    assert (info.low, info.high, info.n_clipped) == (-math.inf, math.inf, 0) and Z is Y


def test_cutoffs_move_with_an_affine_change_of_units():
    g = np.random.default_rng(0)
    y = np.concatenate([g.standard_t(2, size=30), [-400.0, 250.0]])  # heavy tails
    low, high = robust_bounds(_t(y))
    for a, b in [(2.0, -7.0), (1e-6, 3.0), (1e6, 1e9)]:
        lo2, hi2 = robust_bounds(_t(a * y + b))
        assert lo2 == pytest.approx(a * low + b, rel=1e-9)
        assert hi2 == pytest.approx(a * high + b, rel=1e-9)


def test_any_finite_values_come_out_finite_ordered_and_within_the_span():
    g = np.random.default_rng(1)
    extremes = [BIG, -BIG, 1e300, -1e300, 1e200, 1e-300, -5e-324, 0.0]
    for _ in range(200):
        n = int(g.integers(2, 30))
        y = np.where(
            g.random(n) < 0.3,
            g.choice(extremes, size=n),
            g.normal(size=n) * 10 ** g.uniform(-5, 5),
        )
        Y = _t(y)
        Z, info = winsorize(Y)
        z = Z.reshape(-1)
        assert torch.isfinite(z).all(), y
        assert z.max() / 2 - z.min() / 2 <= MAX_SPAN / 2 * (1 + 1e-12), y
        order = torch.argsort(Y.reshape(-1))
        assert (z[order].diff() >= 0).all(), y  # never reorders
        assert info.n_low == int((Y < info.low).sum()) and info.n_high == int(
            (Y > info.high).sum()
        )


def test_shape_and_dtype_are_kept():
    for column in (True, False):
        for dtype in (torch.float64, torch.float32):
            Y = _t([1.0, 2, 3, 4, 5, -1e30], column).to(dtype)
            Z, info = winsorize(Y)
            assert Z.shape == Y.shape and Z.dtype == dtype and info.n_low == 1
            assert Z.reshape(-1)[-1].item() == info.low == 1.0  # u = (-1e30, 1..5)


def test_non_finite_values_and_bad_fences_are_refused():
    with pytest.raises(ValueError, match=r"Y: expected finite outcomes, got inf"):
        robust_bounds(_t([1.0, math.inf]))
    with pytest.raises(ValueError, match=r"Y: expected finite outcomes, got nan"):
        winsorize(_t([math.nan, 1.0]))
    with pytest.raises(ValueError, match=r"bad_fence.*-1"):
        robust_bounds(_t([1.0, 2.0]), bad_fence=-1)
    with pytest.raises(ValueError, match=r"good_fence.*nan"):
        robust_bounds(_t([1.0, 2.0]), good_fence=math.nan)
    assert robust_bounds(_t(range(9)), bad_fence=math.inf, good_fence=math.inf) == (
        -math.inf,
        math.inf,
    )
