"""Bounding extreme outcomes before a model sees them (winsorization).

One told value of ``1e200`` or ``sys.float_info.max`` (a common "infeasible"
penalty) is finite, but a model on the scale of such outcomes is not: a
standard deviation squares deviations and overflows from about ``1e154``, a
posterior variance on that scale does too, and even without overflow one
penalty makes every ordinary value look alike after standardization. Ax
winsorizes outcomes by default; its automatic cutoff for a single objective
clips only the bad side, at the lower Tukey fence ``q1 - 1.5 IQR`` (the
quartiles of the observed values, the lower one rounded down to an
observation and the upper one rounded up), and clipped values take the fence.

``robust_bounds`` computes the cutoffs for outcomes oriented for maximization
(the bad tail is the low side). Compared with Ax's rule:

- **Quartiles of the distinct values.** A penalty returned by a quarter or
  more of the trials (an infeasible region) breaks the ordinary quartiles --
  ``q1`` is the penalty and nothing is clipped -- while among distinct values
  it counts once. Continuous outcomes are all distinct: for them it is Ax's.
- **A far bad fence, ``q1 - 10 IQR``** (``BAD_FENCE``): only values that are
  extreme for the data are touched, so ordinary objectives (Branin's steep
  walls) reach the model as they are.
- **Clipped values take the worst value kept** (classic winsorization), not
  the fence: a penalty then looks like the worst ordinary outcome, not a
  cliff ten IQRs deep that flattens every ordinary value after standardization.
- **The good side** is bounded far out, at ``q3 + 1000 IQR``
  (``GOOD_FENCE``): a good tail is where the optimum is, so only a value that
  would make every other look constant is lowered, to the fence (it stays the
  largest).
- **A span guard**: if the values within the fences still span more than
  ``MAX_SPAN``, both cutoffs close in to ``MAX_SPAN / 2`` around the median of
  the distinct values (and values below still take the worst value kept, if
  one is left). It acts only where the fences cannot: on fewer than five
  distinct values (their fences lie outside the data) or when the bulk of the
  data spans more than ``MAX_SPAN``. ``1e100`` leaves room: with outcomes
  spanning ``1e150``, botorch's acquisition optimizer produced non-finite values.

The choices were measured with the whole loop (``benchmarks/outcome_extremes.py``,
median final regret; Branin 30 evaluations, seeds 0-9; Hartmann-6 60
evaluations, seeds 0-5; the "infeasible" variants return ``sys.float_info.max``
for ``x1 > 7.5`` on Branin, ``x1 > 0.5`` on Hartmann-6). Ax's rule as is
(fence 1.5, clipped to the fence) kept Branin at 5.3e-4 (4.7e-4 before) but
reached only 0.28 on infeasible Hartmann-6 (random search: 1.9): clipped 1.5
IQR below the quartile, the penalties made a cliff beside the optimum. A fence
of 10 clipped to the fence: 1.5. Clipping to the worst value kept: 2.8e-4 there with
either fence; the far fence touched ordinary Branin values in 0-13 of a run's
26 fits where 1.5 touched 17-25, and Branin's median was 3.0e-4 against 1.0e-3.
With the rule here: Branin 3.0e-4, Hartmann-6 unchanged (nothing clipped),
infeasible Branin 9.1e-4 and Hartmann-6 3.2e-4 (seeds 0-9), where before every
model ask after the first penalty fell back (2.0 and 1.7) and a benign
penalty (300 and 0 instead of the largest float) gave 1.7e-3 and 5.1e-4.

Nothing here squares a value, and differences are taken of halved values, so
no finite outcome makes a cutoff overflow or NaN.

The bounded outcomes are what every model, the acquisition's incumbent and
``Optimizer.predict`` see (``bayesopt.proposal.training_data``); the values
told stay in the study unchanged.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["BAD_FENCE", "GOOD_FENCE", "MAX_SPAN", "Clipped", "robust_bounds", "winsorize"]

#: Lower fence, in inter-quartile ranges below the lower quartile (Tukey's and Ax's is 1.5).
BAD_FENCE = 10.0
#: Upper fence, in inter-quartile ranges above the upper quartile.
GOOD_FENCE = 1000.0
#: Widest range the bounded outcomes may span (see the module docstring).
MAX_SPAN = 1e100


@dataclass(frozen=True)
class Clipped:
    """What ``winsorize`` did.

    Attributes:
        low: The lower cutoff (``-inf``: none).
        high: The upper cutoff (``inf``: none).
        n_low: Number of values raised to ``low``.
        n_high: Number of values lowered to ``high``.
    """

    low: float
    high: float
    n_low: int
    n_high: int

    @property
    def n_clipped(self) -> int:
        """Number of values changed."""
        return self.n_low + self.n_high


def robust_bounds(
    Y: Tensor, bad_fence: float | None = None, good_fence: float | None = None
) -> tuple[float, float]:
    """Cutoffs ``(low, high)`` for outcomes oriented for maximization.

    With ``u_1 < ... < u_k`` the distinct values of ``Y``, ``q1 = u_(1 +
    floor((k - 1) / 4))`` and ``q3 = u_(1 + ceil(3 (k - 1) / 4))`` (the
    quartiles rounded outwards to values, as Ax's Tukey fences) and ``IQR = q3
    - q1``, the fences are ``low = q1 - bad_fence * IQR`` and ``high = q3 +
    good_fence * IQR``. Fewer than five distinct values give ``IQR = u_k -
    u_1``: the fences lie outside the data. If the values within the fences
    still span more than ``MAX_SPAN``, both cutoffs move to ``MAX_SPAN / 2``
    around the median of the distinct values. Then, when values lie below the
    lower cutoff, ``low`` is the smallest value at or above it (if that is not
    above ``high``): clipped values take the worst value kept.

    Args:
        Y: ``n x 1`` (or ``n``) finite outcomes, larger is better.
        bad_fence: Inter-quartile ranges below ``q1`` (``inf``: no lower fence;
            ``None``: ``BAD_FENCE``).
        good_fence: Inter-quartile ranges above ``q3`` (``inf``: no upper fence;
            ``None``: ``GOOD_FENCE``).

    Returns:
        ``(low, high)`` as Python floats; ``-inf`` / ``inf`` where nothing is bounded.

    Raises:
        ValueError: ``Y`` holds a non-finite value, or a fence is negative or NaN.
    """
    import torch

    bad_fence = BAD_FENCE if bad_fence is None else bad_fence
    good_fence = GOOD_FENCE if good_fence is None else good_fence
    for name, fence in (("bad_fence", bad_fence), ("good_fence", good_fence)):
        if not fence >= 0:  # also catches NaN
            raise ValueError(f"{name}: expected a non-negative number, got {fence!r}.")
    y = Y.detach().reshape(-1)
    if not bool(torch.isfinite(y).all()):
        bad = y[~torch.isfinite(y)][0].item()
        raise ValueError(f"Y: expected finite outcomes, got {bad!r}.")
    u = torch.unique(y).tolist()  # sorted distinct values, as Python floats
    k = len(u)
    if k < 2:
        return -math.inf, math.inf
    q1, q3 = u[(k - 1) // 4], u[-(-3 * (k - 1) // 4)]
    # Python float arithmetic: halves so that q3 - q1 cannot overflow; a fence
    # beyond the largest float becomes infinite (no value lies beyond it)
    half_iqr = q3 / 2 - q1 / 2
    low = q1 - 2 * bad_fence * half_iqr if math.isfinite(bad_fence) else -math.inf
    high = q3 + 2 * good_fence * half_iqr if math.isfinite(good_fence) else math.inf
    if min(high, u[-1]) / 2 - max(low, u[0]) / 2 > MAX_SPAN / 2:
        median = u[(k - 1) // 2] / 2 + u[k // 2] / 2
        low, high = max(low, median - MAX_SPAN / 2), min(high, median + MAX_SPAN / 2)
    i = bisect.bisect_left(u, low)
    if 0 < i < k and u[i] <= high:  # values below: they take the worst value kept
        low = u[i]
    return low, high


def winsorize(
    Y: Tensor, bad_fence: float | None = None, good_fence: float | None = None
) -> tuple[Tensor, Clipped]:
    """Clip ``Y`` to ``robust_bounds(Y)``.

    Apply it once to a data set: the cutoffs of clipped data differ from those
    of the data (clipped values merge into one distinct value).

    Args:
        Y: ``n x 1`` (or ``n``) finite outcomes, larger is better.
        bad_fence: See ``robust_bounds``.
        good_fence: See ``robust_bounds``.

    Returns:
        ``(Y_clipped, info)``: ``Y_clipped`` has the shape, dtype and device of
        ``Y`` (``Y`` itself when nothing is clipped); ``info`` says where and
        how many were clipped.

    Raises:
        ValueError: as ``robust_bounds``.
    """
    low, high = robust_bounds(Y, bad_fence, good_fence)
    n_low = int((Y < low).sum()) if low > -math.inf else 0
    n_high = int((Y > high).sum()) if high < math.inf else 0
    info = Clipped(low=low, high=high, n_low=n_low, n_high=n_high)
    if not info.n_clipped:
        return Y, info
    return Y.clamp(min=low, max=high), info
