"""Preconditioning of continuous acquisition optimization by the GP's lengthscales.

A GP acquisition depends on ``x`` through ``x / l`` (ARD lengthscales ``l``),
so where lengthscales differ by orders of magnitude its surface is a long
narrow valley in ``x`` and L-BFGS-B needs many iterations (and line-search
steps) to follow it. Optimizing over ``z = x / l`` instead, on the box
``[lower / l, upper / l]``, makes the curvature comparable along every axis
(the idea of Optuna's ``GPSampler``, which optimizes in the same scaled
coordinates). The box is mapped linearly, so the quasi-random starting points
are as uniform as before and the optimum is the same point.
"""

from __future__ import annotations

import torch
from botorch.acquisition import AcquisitionFunction, OneShotAcquisitionFunction
from torch import Tensor

__all__ = ["ScaledAcquisition", "input_scales"]


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
