"""Thompson sampling: maximize one draw of the posterior over functions.

Each proposed point maximizes its own independent posterior draw ``g_j``, so
a batch (or the sequential greedy steps of the acquisition optimizer) gets
``q`` independent draws: the acquisition value of a batch ``x_1 .. x_q`` is
``sum_j g_j(x_j)``, and in sequential optimization step ``j`` (``j`` points
already added to the pending set) uses draw ``j``. Pending trials need no
special treatment: each proposal draws afresh under its own seed, so two asks
without a tell differ. Every draw is seeded by ``context.seed``.

How a draw is represented depends on the model (``acquisitions.matrix``):

- exact GP whose kernel has random Fourier features (RBF, Matern): a
  pathwise posterior sample (Matheron's rule, Wilson et al., 2020) with
  ``num_features`` random Fourier features for the prior, botorch's
  ``draw_matheron_paths``; a global, differentiable function, maximized by the
  usual gradient optimizer;
- any other exact GP (categorical, NNGP, deep kernels): the same Matheron
  update, with the prior drawn exactly and jointly on an inducing set ``Z``
  (the evaluated points and ``num_inducing`` quasi-random points of the
  domain) and extended to other inputs by the kernel,
  ``f(x) = m(x) + k(x, Z) K_ZZ^{-1} f(Z)``. Because ``Z`` contains the data,
  the draw is an exact posterior sample on ``Z`` and a smooth interpolation
  elsewhere (away from ``Z`` it reverts towards the posterior mean, so it
  explores a little less there);
- a sample-based ensemble: one member, chosen at random (seeded, with the
  ensemble's weights); maximizing it is exact Thompson sampling for an
  ensemble posterior;
- a model with its own sample paths (``draw_paths``, e.g. the neural
  bandit's linearized network ``f(x) + g(x)^T w``: NeuralTS): its seeded joint
  draws, global functions maximized like GP paths;
- any other model, on finite domains only: one joint posterior sample over
  the candidate set (at most ``max_candidates`` points, subsampled), looked up.
"""

from __future__ import annotations

import functools

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.models.model import Model
from botorch.sampling.pathwise import draw_kernel_feature_paths, draw_matheron_paths
from botorch.sampling.pathwise.features.maps import KernelEvaluationMap
from botorch.sampling.pathwise.paths import GeneralizedLinearPath
from botorch.sampling.pathwise.utils import get_input_transform
from botorch.utils.transforms import t_batch_mode_transform
from torch import Tensor

from acquisitions.base import Acquisition, AcquisitionContext, UnsupportedModelError
from acquisitions.discretize import discretization, is_finite
from acquisitions.matrix import MatrixChecked, model_traits

__all__ = ["CandidateDraws", "EnsembleMemberDraws", "PathDraws", "ThompsonSampling"]


class _Draws(AcquisitionFunction):
    """``n_draws`` independent draws ``g_j``; a batch is worth ``sum_j g_{o+j}(x_j)``.

    ``o`` counts the points added to ``X_pending`` since construction (the
    sequential steps of the acquisition optimizer), so step ``k`` uses draw ``k``.
    """

    def __init__(self, model: Model, n_draws: int, X_pending: Tensor | None = None) -> None:
        super().__init__(model=model)
        self.n_draws = int(n_draws)
        self._n_base_pending = 0 if X_pending is None else int(X_pending.shape[-2])
        self.set_X_pending(X_pending)

    def _offset(self) -> int:
        n = 0 if self.X_pending is None else int(self.X_pending.shape[-2])
        return max(0, n - self._n_base_pending)

    def _values(self, X: Tensor) -> Tensor:
        """``n_draws x batch x q`` values of every draw at every point of ``X``."""
        raise NotImplementedError

    @t_batch_mode_transform()
    def forward(self, X: Tensor) -> Tensor:
        """Sum over the batch of each point's own draw.

        Args:
            X: ``batch x q x d`` points.

        Returns:
            ``batch`` values.
        """
        q = X.shape[-2]
        if q > self.n_draws:
            raise ValueError(f"Thompson sampling: {self.n_draws} draws, got a batch of q={q}.")
        first = min(self._offset(), self.n_draws - q)
        values = self._values(X).movedim(0, -1)  # batch x q x n_draws
        j = torch.arange(q, device=X.device)
        return values[..., j, first + j].sum(-1)


class PathDraws(_Draws):
    """Thompson draws given as botorch sample paths (functions of ``batch x q x d`` inputs)."""

    def __init__(self, model: Model, paths: torch.nn.Module, n_draws: int, X_pending=None):
        super().__init__(model, n_draws, X_pending)
        self.paths = paths

    def _values(self, X: Tensor) -> Tensor:
        out = self.paths(X.unsqueeze(-3))  # batch x n_draws x q
        return out.reshape(*X.shape[:-2], self.n_draws, X.shape[-2]).movedim(-2, 0)


class EnsembleMemberDraws(_Draws):
    """Thompson draws of an ensemble: member ``members[j]`` is draw ``j``."""

    def __init__(self, model: Model, members: Tensor, X_pending=None):
        super().__init__(model, len(members), X_pending)
        self.register_buffer("members", members)

    def _values(self, X: Tensor) -> Tensor:
        values = self.model.posterior(X).values  # batch x S x q x 1
        return values[..., self.members, :, 0].movedim(-2, 0)


class CandidateDraws(_Draws):
    """Thompson draws as joint posterior samples over a finite candidate set.

    Points that are not candidates are worth ``-inf`` (the finite-domain
    optimizers only evaluate candidates).
    """

    def __init__(self, model: Model, candidates: Tensor, samples: Tensor, X_pending=None):
        super().__init__(model, samples.shape[0], X_pending)
        self.register_buffer("candidates", candidates)
        self.register_buffer("samples", samples)  # n_draws x m

    def _values(self, X: Tensor) -> Tensor:
        dist = torch.cdist(  # exact distances: the matmul shortcut is off by ~1e-8
            X.reshape(-1, X.shape[-1]),
            self.candidates,
            compute_mode="donot_use_mm_for_euclid_dist",
        )
        nearest = dist.min(dim=-1)
        values = self.samples[:, nearest.indices]
        values = values.masked_fill((nearest.values > 1e-9).unsqueeze(0), float("-inf"))
        return values.reshape(self.n_draws, *X.shape[:-1])


def _inducing_prior_paths(
    model: Model, sample_shape: torch.Size, points: Tensor, **_: object
) -> GeneralizedLinearPath:
    """Prior draws exact on ``points`` (transformed inputs), ``m(x) + k(x, Z) K_ZZ^{-1} f(Z)``."""
    kernel = model.covar_module
    with torch.no_grad():
        K = kernel(points).to_dense()
    scale = K.diagonal().mean().clamp_min(1e-12)
    eye = torch.eye(K.shape[-1], dtype=K.dtype, device=K.device)
    for rel in (1e-8, 1e-6, 1e-4, 1e-2):
        L, info = torch.linalg.cholesky_ex(K + rel * scale * eye)
        if int(info) == 0:
            break
    else:
        raise RuntimeError(
            "Thompson sampling: the inducing kernel matrix is not positive definite"
        )
    eps = torch.randn(*sample_shape, K.shape[-1], 1, dtype=K.dtype, device=K.device)
    weight = torch.linalg.solve_triangular(L.mT, eps, upper=True).squeeze(-1)
    return GeneralizedLinearPath(
        feature_map=KernelEvaluationMap(
            kernel, points, input_transform=get_input_transform(model)
        ),
        weight=weight,
        bias_module=model.mean_module,
    )


class ThompsonSampling(MatrixChecked, Acquisition):
    """Thompson sampling with pathwise samples, ensemble members or candidate-set draws.

    Args:
        num_features: Random Fourier features of a pathwise GP prior draw.
        num_inducing: Quasi-random points of the inducing set when the kernel
            has no random features (plus the evaluated points).
        max_candidates: Largest candidate set drawn jointly (models with no
            sample paths, finite domains only).
    """

    name = "ts"

    def __init__(
        self, *, num_features: int = 1024, num_inducing: int = 512, max_candidates: int = 2048
    ) -> None:
        for label, value, even in (
            ("num_features", num_features, True),
            ("num_inducing", num_inducing, False),
            ("max_candidates", max_candidates, False),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"{label}: expected an integer >= 2, got {value!r}.")
            if even and value % 2:
                raise ValueError(f"{label}: expected an even number, got {value!r}.")
        self.num_features = num_features
        self.num_inducing = num_inducing
        self.max_candidates = max_candidates

    def build(self, model: Model, context: AcquisitionContext) -> AcquisitionFunction:
        """One independent, seeded posterior draw per point of the batch."""
        self.check_model(model)
        traits = model_traits(model)
        q = context.q
        # no_grad: the draws' weights are constants (a graph through the model's
        # hyperparameters would be freed by the optimizer's first backward pass)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(context.seed)
            if traits.ensemble:
                return self._ensemble(model, context)
            if traits.sample_paths:
                paths = model.draw_paths(torch.Size([q]))
                return PathDraws(model, paths, q, context.X_pending)
            if traits.exact_gp:
                if traits.random_features:
                    prior = functools.partial(
                        draw_kernel_feature_paths, num_features=self.num_features
                    )
                else:
                    Z = discretization(
                        context.domain, self.num_inducing, context.seed, include=context.X_baseline
                    )
                    prior = functools.partial(
                        _inducing_prior_paths, points=model.transform_inputs(Z)
                    )
                paths = draw_matheron_paths(model, torch.Size([q]), prior_sampler=prior)
                return PathDraws(model, paths, q, context.X_pending)
            return self._candidates(model, context)

    def _ensemble(self, model: Model, context: AcquisitionContext) -> AcquisitionFunction:
        posterior = model.posterior(context.X_baseline[:1])
        weights = posterior.weights.to(torch.float64)
        g = torch.Generator().manual_seed(int(context.seed))
        members = torch.multinomial(weights.cpu(), context.q, replacement=True, generator=g)
        return EnsembleMemberDraws(model, members.to(posterior.device), context.X_pending)

    def _candidates(self, model: Model, context: AcquisitionContext) -> AcquisitionFunction:
        if not is_finite(context.domain):
            raise UnsupportedModelError(
                f"Thompson sampling on {type(model).__name__} needs sample paths "
                "(an exact GP or an ensemble); other models are supported on finite "
                "domains only (candidate-set draws), and this domain is not finite."
            )
        C = discretization(context.domain, self.max_candidates, context.seed)
        with torch.no_grad():
            samples = model.posterior(C).rsample(torch.Size([context.q]))
        return CandidateDraws(model, C, samples.reshape(context.q, -1), context.X_pending)

    def __repr__(self) -> str:
        return (
            f"ThompsonSampling(num_features={self.num_features}, "
            f"num_inducing={self.num_inducing}, max_candidates={self.max_candidates})"
        )
