"""Upper confidence bound, ``mu(x) + sqrt(beta) sigma(x)`` (GP-UCB, Srinivas et al., 2010).

For one point without pending points on a Gaussian posterior this is botorch's
``UpperConfidenceBound``; otherwise its Monte Carlo form
``qUpperConfidenceBound`` (``mean + sqrt(beta pi / 2) |Y - mean|``, equal in
expectation for a Gaussian) with the pending points in the joint batch (the
switch is ``acquisitions.ei.use_analytic``).

The default ``beta`` follows a schedule rather than a constant, because the
exploration bonus must grow slowly with the number of evaluations for GP-UCB
to keep exploring (its no-regret guarantee). Srinivas et al.'s Theorem 1
(finite domain ``D``) uses ``beta_t = 2 log(|D| t^2 pi^2 / (6 delta))``; we use
it with ``|D|`` replaced by the dimension ``d`` (the usual practical reading,
since ``|D|`` is infinite on continuous domains) and scaled down by 5, as
Kandasamy et al. (2015) do, because the theoretical value is known to
over-explore::

    beta_t = 0.2 * 2 log(d t^2 pi^2 / (6 delta)),  delta = 0.1,

with ``t`` the number of finished trials (at least 1). In 4 dimensions this is
``beta = 3.5`` at ``t = 10`` and ``5.4`` at ``t = 100`` (``sqrt(beta)`` from 1.9
to 2.3). A number passed as ``beta`` is used as a constant instead.
"""

from __future__ import annotations

import math

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.analytic import UpperConfidenceBound
from botorch.acquisition.monte_carlo import qUpperConfidenceBound
from botorch.models.model import Model
from botorch.sampling.base import MCSampler

from acquisitions.base import AcquisitionContext
from acquisitions.ei import AnalyticOrMC

__all__ = ["UCB", "gp_ucb_beta"]


def gp_ucb_beta(d: int, t: int, delta: float = 0.1, scale: float = 0.2) -> float:
    """``scale * 2 log(d t^2 pi^2 / (6 delta))``, the default ``beta`` schedule.

    Args:
        d: Input dimension (at least 1).
        t: Number of finished evaluations (at least 1 is used).
        delta: Confidence parameter in ``(0, 1)``.
        scale: Multiplier of the theoretical value (0.2: Kandasamy et al., 2015).

    Returns:
        ``beta_t``, clamped at 0 from below.
    """
    t = max(int(t), 1)
    d = max(int(d), 1)
    return max(0.0, scale * 2.0 * math.log(d * t**2 * math.pi**2 / (6.0 * delta)))


def _positive(name: str, value: object, upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name}: expected a positive number, got {value!r}.")
    if upper is not None and not value < upper:
        raise ValueError(f"{name}: expected a number below {upper}, got {value!r}.")
    return float(value)


class UCB(AnalyticOrMC):
    """Upper confidence bound with a constant ``beta`` or the GP-UCB schedule.

    Args:
        beta: Constant ``beta`` (>= 0), or ``None`` for the schedule
            ``gp_ucb_beta(d, t, delta, scale)`` (see the module docstring).
        delta: Confidence parameter of the schedule, in ``(0, 1)``.
        scale: Multiplier of the schedule.
        num_samples: Monte Carlo samples of the batch form.
    """

    name = "ucb"

    def __init__(
        self,
        *,
        beta: float | None = None,
        delta: float = 0.1,
        scale: float = 0.2,
        num_samples: int = 128,
    ) -> None:
        super().__init__(num_samples=num_samples)
        if beta is not None and (
            isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta >= 0
        ):
            raise ValueError(f"beta: expected a non-negative number or None, got {beta!r}.")
        self.beta = None if beta is None else float(beta)
        self.delta = _positive("delta", delta, upper=1.0)
        self.scale = _positive("scale", scale)

    def beta_for(self, context: AcquisitionContext) -> float:
        """The ``beta`` used in ``context`` (the constant, or the schedule's value)."""
        if self.beta is not None:
            return self.beta
        return gp_ucb_beta(context.domain.dim, context.iteration, self.delta, self.scale)

    def _analytic(self, model: Model, context: AcquisitionContext) -> AcquisitionFunction:
        # a float64 tensor: botorch stores a Python float as a float32 buffer, so
        # sqrt(beta) would be off in the 8th digit
        beta = torch.tensor(self.beta_for(context), dtype=torch.float64)
        return UpperConfidenceBound(model, beta=beta.to(context.X_baseline.device))

    def _monte_carlo(
        self, model: Model, context: AcquisitionContext, sampler: MCSampler
    ) -> AcquisitionFunction:
        return qUpperConfidenceBound(
            model, beta=self.beta_for(context), sampler=sampler, X_pending=context.X_pending
        )

    def __repr__(self) -> str:
        return (
            f"UCB(beta={self.beta!r}, delta={self.delta!r}, scale={self.scale!r}, "
            f"num_samples={self.num_samples})"
        )
