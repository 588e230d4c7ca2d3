"""Wrappers for the continuous acquisition search: lengthscale preconditioning, finite gradients.

A GP acquisition depends on ``x`` through ``x / l`` (ARD lengthscales ``l``),
so where lengthscales differ by orders of magnitude its surface is a long
narrow valley in ``x`` and L-BFGS-B needs many iterations (and line-search
steps) to follow it. Optimizing over ``z = x / l`` instead, on the box
``[lower / l, upper / l]``, makes the curvature comparable along every axis
(the idea of Optuna's ``GPSampler``, which optimizes in the same scaled
coordinates). The box is mapped linearly, so the quasi-random starting points
are as uniform as before and the optimum is the same point.

``FiniteGradAcquisition`` zeroes non-finite input gradients, so one restart
standing where the gradient is undefined does not fail the whole proposal.
"""

from __future__ import annotations

import torch
from botorch.acquisition import AcquisitionFunction, OneShotAcquisitionFunction
from torch import Tensor

__all__ = ["FiniteGradAcquisition", "ScaledAcquisition", "input_scales"]


def input_scales(acqf: AcquisitionFunction, d: int) -> Tensor | None:
    """The ``d`` ARD lengthscales of the acquisition's GP, or None.

    None when the model has no single ARD kernel over all ``d`` inputs (networks,
    mixed and text kernels, fully Bayesian batches) or transforms its inputs,
    and for one-shot acquisitions (knowledge gradient).

    Args:
        acqf: The acquisition function (its ``model`` is inspected).
        d: Number of encoded columns.

    Returns:
        A detached ``d`` tensor of positive finite scales, or None.
    """
    if isinstance(acqf, OneShotAcquisitionFunction):
        return None  # its q-batch carries the fantasy points; botorch must see the class
    model = getattr(acqf, "model", None)
    if model is None or getattr(model, "input_transform", None) is not None:
        return None
    kernel = getattr(model, "covar_module", None)
    kernel = getattr(kernel, "base_kernel", kernel)  # ScaleKernel(base)
    if kernel is None or getattr(kernel, "active_dims", None) is not None:
        return None
    lengthscale = getattr(kernel, "lengthscale", None)
    if not isinstance(lengthscale, Tensor) or lengthscale.numel() != d:
        return None
    scales = lengthscale.detach().reshape(d)
    if not (torch.isfinite(scales).all() and (scales > 0).all()):
        return None
    return scales


class ScaledAcquisition(AcquisitionFunction):
    """``acqf`` as a function of ``z = x / scales``.

    Args:
        acqf: The acquisition function of ``x`` (``batch x q x d -> batch``).
        scales: ``d`` positive scales.
    """

    def __init__(self, acqf: AcquisitionFunction, scales: Tensor) -> None:
        super().__init__(model=acqf.model)
        self.acqf = acqf
        self.register_buffer("scales", scales)

    def forward(self, Z: Tensor) -> Tensor:
        """The acquisition value at ``x = Z * scales`` (``batch x q x d -> batch``)."""
        return self.acqf(Z * self.scales)

    def scale_bounds(self, bounds: Tensor) -> Tensor:
        """``2 x d`` bounds of ``x`` mapped to ``z``."""
        return bounds / self.scales

    def unscale(self, Z: Tensor) -> Tensor:
        """Points in ``z`` (``... x d``) mapped back to ``x``."""
        return Z * self.scales


class _ZeroNonFiniteGrad(torch.autograd.Function):
    """Identity whose backward replaces NaN and infinite gradient entries by 0."""

    @staticmethod
    def forward(ctx: object, X: Tensor) -> Tensor:
        return X.view_as(X)

    @staticmethod
    def backward(ctx: object, grad: Tensor) -> Tensor:
        return torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)


class FiniteGradAcquisition(AcquisitionFunction):
    """``acqf`` with non-finite input gradients set to 0.

    An acquisition can be finite where its gradient is not (a ``log`` of a
    clamped zero behind a ``where``, a square root at zero). botorch's L-BFGS-B
    wrapper then raises ``OptimizationGradientError`` and the whole proposal
    falls back to a space-filling point. With the gradient zeroed, only the
    restart standing there stops (L-BFGS-B sees a stationary point); the other
    restarts go on.

    Args:
        acqf: The acquisition function (``batch x q x d -> batch``).
    """

    def __init__(self, acqf: AcquisitionFunction) -> None:
        super().__init__(model=acqf.model)
        self.acqf = acqf

    def forward(self, X: Tensor) -> Tensor:
        """The acquisition value at ``X`` (``batch x q x d -> batch``)."""
        return self.acqf(_ZeroNonFiniteGrad.apply(X))
