"""Monte Carlo noisy expected improvement (Letham et al., 2019).

``qlognei`` is botorch's ``qLogNoisyExpectedImprovement`` (Ament et al., 2023),
the default: the expected improvement of the q new points over the best of the
evaluated points, integrated jointly over the posterior of both, so it needs
no noise-free incumbent. Pending and failed points join the joint batch, so
the acquisition values only what they add. ``qnei`` is the classic (non-log)
form, whose gradients vanish where improvement is unlikely.
"""

from __future__ import annotations

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.cached_cholesky import supports_cache_root
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.acquisition.monte_carlo import qNoisyExpectedImprovement
from botorch.models.model import Model
from botorch.sampling.get_sampler import get_sampler

from acquisitions.base import Acquisition, AcquisitionContext

__all__ = ["QLogNEI", "QNEI"]


class _NoisyEIBase(Acquisition):
    """Shared construction of the Monte Carlo noisy EI family.

    Args:
        num_samples: Monte Carlo samples of the joint posterior (quasi-random,
            seeded per proposal, so the acquisition is deterministic).
        prune_baseline: Drop evaluated points that are almost surely not the
            best (keeps the joint batch small as the study grows).
    """

    _cls: type[AcquisitionFunction]

    def __init__(self, *, num_samples: int = 128, prune_baseline: bool = True) -> None:
        if int(num_samples) < 1:
            raise ValueError(f"num_samples: expected a positive integer, got {num_samples!r}.")
        self.num_samples = int(num_samples)
        self.prune_baseline = bool(prune_baseline)

    def build(self, model: Model, context: AcquisitionContext) -> AcquisitionFunction:
        """Build the acquisition on ``model`` with the context's baseline and pending points."""
        self.check_model(model)
        X_baseline = context.X_baseline
        posterior = model.posterior(X_baseline[:1])
        sampler = get_sampler(posterior, torch.Size([self.num_samples]), seed=context.seed)
        return self._cls(
            model=model,
            X_baseline=X_baseline,
            sampler=sampler,
            X_pending=context.X_pending,
            prune_baseline=self.prune_baseline,
            cache_root=supports_cache_root(model),
        )


class QLogNEI(_NoisyEIBase):
    """Log noisy expected improvement (``qLogNoisyExpectedImprovement``); the default."""

    name = "qlognei"
    _cls = qLogNoisyExpectedImprovement


class QNEI(_NoisyEIBase):
    """Classic Monte Carlo noisy expected improvement (``qNoisyExpectedImprovement``)."""

    name = "qnei"
    _cls = qNoisyExpectedImprovement
