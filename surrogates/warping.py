"""Output warping: a Yeo-Johnson power transform fitted to the outcomes.

A stationary GP fits objectives with a long tail badly: Branin spans 0.4 to
300, and a kernel that explains the steep walls has to call the shallow
valley's structure noise. Warping the outcomes towards normality before the
GP (as HEBO does, Cowen-Rivers et al., 2022) lets the GP spend its resolution
where the data are. ``YeoJohnson`` z-scores ``Y``, fits the power
``lmbda`` by maximum likelihood (scipy's ``yeojohnson_normmax``), and maps
through the Yeo-Johnson transform (Yeo & Johnson, 2000).

``lmbda`` is restricted to ``[0, 2]``: there the inverse is defined on the
whole real line, so any posterior sample maps back to a finite outcome.
``lmbda = 2`` is a logarithmic compression of the lower tail (long tails
below, e.g. minimizing a positive function), ``lmbda = 0`` of the upper tail,
``lmbda = 1`` the identity.

The posterior is mapped back to the scale of ``Y``: samples exactly through
the inverse transform, mean and variance by Gauss-Hermite quadrature of the
Gaussian posterior in the warped space.
"""

from __future__ import annotations

import numpy as np
import torch
from botorch.models.transforms.outcome import OutcomeTransform
from botorch.posteriors import Posterior, TransformedPosterior
from torch import Tensor

__all__ = ["YeoJohnson", "yeo_johnson", "yeo_johnson_inverse"]

#: Gauss-Hermite (probabilists') nodes and weights for the posterior moments.
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(24)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def yeo_johnson(y: Tensor, lmbda: float) -> Tensor:
    """The Yeo-Johnson transform of ``y`` (any shape) with power ``lmbda`` in ``[0, 2]``."""
    pos = y >= 0
    yp = torch.where(pos, y, torch.zeros_like(y))
    yn = torch.where(pos, torch.zeros_like(y), -y)
    if abs(lmbda) < 1e-8:
        up = torch.log1p(yp)
    else:
        up = ((yp + 1) ** lmbda - 1) / lmbda
    if abs(lmbda - 2) < 1e-8:
        down = -torch.log1p(yn)
    else:
        down = -((yn + 1) ** (2 - lmbda) - 1) / (2 - lmbda)
    return torch.where(pos, up, down)


def yeo_johnson_inverse(w: Tensor, lmbda: float) -> Tensor:
    """Inverse of :func:`yeo_johnson`, defined for every real ``w`` when ``0 <= lmbda <= 2``."""
    pos = w >= 0
    wp = torch.where(pos, w, torch.zeros_like(w))
    wn = torch.where(pos, torch.zeros_like(w), w)
    if abs(lmbda) < 1e-8:
        up = torch.expm1(wp)
    else:
        up = (lmbda * wp + 1) ** (1 / lmbda) - 1
    if abs(lmbda - 2) < 1e-8:
        down = -torch.expm1(-wn)
    else:
        down = 1 - (1 - (2 - lmbda) * wn) ** (1 / (2 - lmbda))
    return torch.where(pos, up, down)


class YeoJohnson(OutcomeTransform):
    """Z-score, then Yeo-Johnson with a power fitted on the training outcomes.

    Fitted (in train mode) on the first ``forward`` call, like botorch's
    ``Standardize``; follow it with ``Standardize`` so the GP sees unit scale.
    Single output only.

    Args:
        min_stdv: Floor of the z-scoring standard deviation; constant
            outcomes are left unwarped (``lmbda = 1``).
        bounds: Range of ``lmbda`` (within ``[0, 2]``).
    """

    def __init__(self, min_stdv: float = 1e-12, bounds: tuple[float, float] = (0.0, 2.0)):
        super().__init__()
        if not 0.0 <= bounds[0] <= bounds[1] <= 2.0:
            raise ValueError(f"bounds: expected 0 <= low <= high <= 2, got {bounds!r}.")
        self.min_stdv = min_stdv
        self.bounds = bounds
        self.register_buffer("means", torch.zeros(1, dtype=torch.float64))
        self.register_buffer("stdvs", torch.ones(1, dtype=torch.float64))
        self.lmbda = 1.0

    def _fit(self, Y: Tensor) -> None:
        from scipy.stats import yeojohnson_normmax

        y = Y.detach().reshape(-1)
        mean, std = y.mean(), y.std() if y.numel() > 1 else torch.ones((), dtype=y.dtype)
        if not torch.isfinite(std) or std <= self.min_stdv:
            self.means, self.stdvs = mean.reshape(1), torch.ones_like(mean).reshape(1)
            self.lmbda = 1.0
            return
        self.means, self.stdvs = mean.reshape(1), std.reshape(1)
        z = ((y - mean) / std).cpu().numpy()
        try:
            lmbda = float(yeojohnson_normmax(z))
        except Exception:  # noqa: BLE001 - a failed power fit leaves Y unwarped
            lmbda = 1.0
        if not np.isfinite(lmbda):
            lmbda = 1.0
        self.lmbda = float(np.clip(lmbda, *self.bounds))

    def forward(
        self, Y: Tensor, Yvar: Tensor | None = None, X: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Warp ``Y`` (``batch x n x 1``); fits the transform first in train mode."""
        if Yvar is not None:
            raise NotImplementedError("YeoJohnson does not transform observation noise (Yvar).")
        if self.training:
            self._fit(Y)
        return yeo_johnson((Y - self.means) / self.stdvs, self.lmbda), None

    def untransform(
        self, Y: Tensor, Yvar: Tensor | None = None, X: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Map warped values back to the scale of ``Y``."""
        if Yvar is not None:
            raise NotImplementedError("YeoJohnson does not untransform observation noise (Yvar).")
        return self._inverse(Y), None

    def _inverse(self, W: Tensor) -> Tensor:
        return yeo_johnson_inverse(W, self.lmbda) * self.stdvs + self.means

    def _moments(self, mean: Tensor, var: Tensor) -> tuple[Tensor, Tensor]:
        nodes = torch.as_tensor(_NODES, dtype=mean.dtype, device=mean.device)
        weights = torch.as_tensor(_WEIGHTS, dtype=mean.dtype, device=mean.device)
        values = self._inverse(mean.unsqueeze(-1) + var.clamp_min(0).sqrt().unsqueeze(-1) * nodes)
        m = (values * weights).sum(-1)
        v = (((values - m.unsqueeze(-1)) ** 2) * weights).sum(-1)
        return m, v

    def untransform_posterior(self, posterior: Posterior, X: Tensor | None = None) -> Posterior:
        """A posterior on the scale of ``Y``: exact samples, quadrature mean and variance."""
        return TransformedPosterior(
            posterior=posterior,
            sample_transform=self._inverse,
            mean_transform=lambda m, v: self._moments(m, v)[0],
            variance_transform=lambda m, v: self._moments(m, v)[1],
        )
