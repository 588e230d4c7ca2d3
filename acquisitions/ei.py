"""Expected improvement over the best observed value (Jones et al., 1998).

``logei`` is botorch's ``LogExpectedImprovement`` (Ament et al., 2023): exact
for one point and a Gaussian posterior, with the incumbent ``best_f`` taken as
the best observed outcome (which assumes noise-free observations; use
``qlognei`` under noise). With pending points, or for a batch, it switches to
its Monte Carlo form ``qLogExpectedImprovement`` with the pending points in
the joint batch.
"""

from __future__ import annotations

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.analytic import LogExpectedImprovement
from botorch.acquisition.logei import qLogExpectedImprovement
from botorch.models.model import Model
from botorch.sampling.get_sampler import get_sampler

from acquisitions.base import Acquisition, AcquisitionContext

__all__ = ["LogEI"]


class LogEI(Acquisition):
    """Log expected improvement; analytic for ``q = 1`` without pending points.

    Args:
        num_samples: Monte Carlo samples of the batch form.
    """

    name = "logei"

    def __init__(self, *, num_samples: int = 128) -> None:
        if int(num_samples) < 1:
            raise ValueError(f"num_samples: expected a positive integer, got {num_samples!r}.")
        self.num_samples = int(num_samples)

    def build(self, model: Model, context: AcquisitionContext) -> AcquisitionFunction:
        """Analytic LogEI, or qLogEI with the pending points when there are any."""
        self.check_model(model)
        if context.q == 1 and context.X_pending is None:
            return LogExpectedImprovement(model, best_f=context.best_f)
        sampler = get_sampler(
            model.posterior(context.X_baseline[:1]),
            torch.Size([self.num_samples]),
            seed=context.seed,
        )
        return qLogExpectedImprovement(
            model, best_f=context.best_f, sampler=sampler, X_pending=context.X_pending
        )
