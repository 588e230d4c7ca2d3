"""Expected improvement over the best observed value (Jones et al., 1998).

``ei`` is botorch's ``ExpectedImprovement``, ``E[max(f(x) - best_f, 0)] =
(mu - best_f) Phi(z) + sigma phi(z)`` with ``z = (mu - best_f) / sigma``;
``logei`` is its logarithm computed without underflow
(``LogExpectedImprovement``, Ament et al., 2023), the better one to optimize.
Both take the incumbent ``best_f`` as the best observed outcome, which assumes
noise-free observations (use ``qlognei`` under noise).

Both are exact for one point on a Gaussian posterior. With pending points, for
a batch (``q > 1``), or on a non-Gaussian posterior (a sample-based ensemble,
a warped GP) they switch to their Monte Carlo forms (``qExpectedImprovement``,
``qLogExpectedImprovement``) with the pending points in the joint batch and a
sampler seeded by the proposal. That switch, ``use_analytic``, is shared with
``ucb``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.analytic import ExpectedImprovement, LogExpectedImprovement
from botorch.acquisition.logei import qLogExpectedImprovement
from botorch.acquisition.monte_carlo import qExpectedImprovement
from botorch.exceptions.warnings import NumericsWarning
from botorch.models.model import Model
from botorch.posteriors.gpytorch import GPyTorchPosterior
from botorch.sampling.base import MCSampler
from botorch.sampling.get_sampler import get_sampler
from torch import Tensor

from acquisitions.base import Acquisition, AcquisitionContext
from acquisitions.matrix import MatrixChecked

__all__ = ["EI", "AnalyticOrMC", "LogEI", "incumbent", "use_analytic"]


def use_analytic(model: Model, context: AcquisitionContext) -> bool:
    """Whether the analytic form applies: one point, nothing pending, a Gaussian posterior."""
    if context.q != 1 or context.X_pending is not None:
        return False
    with torch.no_grad():
        posterior = model.posterior(context.X_baseline[:1])
    return isinstance(posterior, GPyTorchPosterior)


def incumbent(context: AcquisitionContext) -> Tensor:
    """``context.best_f`` as a tensor of the data's dtype and device.

    botorch stores a Python float ``best_f`` as a float32 buffer, which shifts
    the incumbent by a relative ``6e-8`` (visible in EI near the incumbent).
    """
    X = context.X_baseline
    return torch.tensor(context.best_f, dtype=X.dtype, device=X.device)


@contextlib.contextmanager
def _chosen_deliberately() -> Iterator[None]:
    """Silence botorch's advice to use LogEI instead: ``ei`` was asked for by name."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericsWarning)
        yield


class AnalyticOrMC(MatrixChecked, Acquisition):
    """An acquisition with an analytic form and a Monte Carlo form (see ``use_analytic``).

    Subclasses implement ``_analytic`` and ``_monte_carlo``.

    Args:
        num_samples: Monte Carlo samples of the batch form (quasi-random,
            seeded per proposal, so the acquisition is deterministic).
    """

    def __init__(self, *, num_samples: int = 128) -> None:
        if isinstance(num_samples, bool) or int(num_samples) != num_samples or num_samples < 1:
            raise ValueError(f"num_samples: expected a positive integer, got {num_samples!r}.")
        self.num_samples = int(num_samples)

    def build(self, model: Model, context: AcquisitionContext) -> AcquisitionFunction:
        """The analytic form when ``use_analytic`` holds, else the Monte Carlo form."""
        self.check_model(model)
        if use_analytic(model, context):
            return self._analytic(model, context)
        sampler = get_sampler(
            model.posterior(context.X_baseline[:1]),
            torch.Size([self.num_samples]),
            seed=context.seed,
        )
        return self._monte_carlo(model, context, sampler)

    def _analytic(self, model: Model, context: AcquisitionContext) -> AcquisitionFunction:
        raise NotImplementedError

    def _monte_carlo(
        self, model: Model, context: AcquisitionContext, sampler: MCSampler
    ) -> AcquisitionFunction:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_samples={self.num_samples})"


class EI(AnalyticOrMC):
    """Expected improvement; analytic for one point without pending points.

    Args:
        num_samples: Monte Carlo samples of the batch form.
    """

    name = "ei"

    def _analytic(self, model: Model, context: AcquisitionContext) -> AcquisitionFunction:
        with _chosen_deliberately():
            return ExpectedImprovement(model, best_f=incumbent(context))

    def _monte_carlo(
        self, model: Model, context: AcquisitionContext, sampler: MCSampler
    ) -> AcquisitionFunction:
        with _chosen_deliberately():
            return qExpectedImprovement(
                model, best_f=incumbent(context), sampler=sampler, X_pending=context.X_pending
            )


class LogEI(AnalyticOrMC):
    """Log expected improvement; analytic for one point without pending points.

    Args:
        num_samples: Monte Carlo samples of the batch form.
    """

    name = "logei"

    def _analytic(self, model: Model, context: AcquisitionContext) -> AcquisitionFunction:
        return LogExpectedImprovement(model, best_f=incumbent(context))

    def _monte_carlo(
        self, model: Model, context: AcquisitionContext, sampler: MCSampler
    ) -> AcquisitionFunction:
        return qLogExpectedImprovement(
            model, best_f=incumbent(context), sampler=sampler, X_pending=context.X_pending
        )
