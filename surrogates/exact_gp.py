"""Exact GP prediction without gpytorch's lazy machinery, for fast acquisition loops.

Optimizing an acquisition function calls ``model.posterior`` some 50-200 times
per proposal on a handful of points each. gpytorch answers every call through
its general prediction strategy (lazily evaluated kernels, linear operators,
memoized caches), whose Python overhead is several times the arithmetic at a
few hundred training points. The models here compute the same exact posterior
with plain tensors,

    mean(x)   = m(x) + k(x, X) alpha,                 alpha = (K + S)^-1 (y - m(X))
    cov(x, x') = k(x, x') - (L^-1 k(X, x))^T (L^-1 k(X, x')),  L L^T = K + S,

where ``S`` is the likelihood's noise covariance, caching ``L`` and ``alpha``
until the training data or a hyperparameter value changes. They fall back to
the parent class whenever the fast path does not apply: training mode, batched
models (fantasies, fully Bayesian batches), or multiple outputs; conditioning
and fantasies (knowledge gradient) first let gpytorch build its own caches.
The result agrees with gpytorch's to rounding (a test checks means,
covariances and gradients). An ARD RBF kernel (botorch's default) and a
constant mean are evaluated directly rather than through their modules.
``joint_moments`` returns the posterior mean and covariance as plain tensors,
for Monte Carlo acquisitions that sample the joint posterior themselves
(``acquisitions.noisy_ei``).
"""

from __future__ import annotations

from typing import Any

import torch
from botorch.models import MixedSingleTaskGP, SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.posteriors.gpytorch import GPyTorchPosterior
from gpytorch.distributions import MultivariateNormal
from gpytorch.kernels import RBFKernel
from gpytorch.means import ConstantMean
from gpytorch.settings import lazily_evaluate_kernels
from linear_operator.operators import DenseLinearOperator
from linear_operator.utils.cholesky import psd_safe_cholesky
from torch import Tensor

__all__ = ["FastMixedSingleTaskGP", "FastSingleTaskGP", "fast_mll_loss", "rbf", "sq_dist"]


#: Up to this many ``a x b x d`` differences, squared distances are summed from
#: the differences (exact, cheap to differentiate); above, from inner products.
DIRECT_DISTANCES = 65_536


def sq_dist(A: Tensor, B: Tensor, same: bool = False) -> Tensor:
    """Squared Euclidean distances between the rows of ``A`` and ``B``.

    Args:
        A: ``batch x a x d``.
        B: ``b x d`` or ``batch x b x d``.
        same: ``A`` and ``B`` are the same points (the diagonal is set to 0).

    Returns:
        ``batch x a x b`` distances (non-negative).
    """
    if A.shape[-2] * B.shape[-2] * A.shape[-1] <= DIRECT_DISTANCES:
        return (A.unsqueeze(-2) - B.unsqueeze(-3)).square().sum(-1)
    # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, after centering (as gpytorch, for accuracy)
    center = A.mean(-2, keepdim=True)
    A, B = A - center, B - center
    d2 = A.square().sum(-1, keepdim=True) + B.square().sum(-1).unsqueeze(-2) - 2 * A @ B.mT
    d2 = d2.clamp_min(0)
    if same:
        d2 = d2 - torch.diag_embed(d2.diagonal(dim1=-2, dim2=-1))
    return d2


def rbf(A: Tensor, B: Tensor, lengthscale: Tensor, same: bool = False) -> Tensor:
    """ARD RBF kernel ``exp(-|a - b|^2 / 2)`` on inputs divided by ``lengthscale`` (``1 x d``)."""
    return sq_dist(A / lengthscale, B / lengthscale, same=same).mul(-0.5).exp()


class _FastPrediction:
    """Mixin replacing ``posterior`` of an exact single-output botorch GP."""

    _fast_cache: tuple[tuple, Tensor, Tensor] | None = None

    def _cache_key(self) -> tuple:
        # parameter values, not version counters: gpytorch's setters write through
        # ``.data``, which bumps no version counter
        X, y = self.train_inputs[0], self.train_targets
        values = torch.cat([p.detach().reshape(-1) for p in self.parameters()])
        return (id(X), X._version, id(y), y._version, values)

    def _cache_hit(self, key: tuple) -> bool:
        if self._fast_cache is None:
            return False
        old = self._fast_cache[0]
        return old[:4] == key[:4] and torch.equal(old[4], key[4])

    def _fast_applies(self, X: Tensor) -> bool:
        train_X = self.train_inputs[0]
        return (
            not self.training
            and self._num_outputs == 1
            and train_X.dim() == 2
            and self.train_targets.dim() == 1
            and X.dim() >= 2
            and len(getattr(self, "_input_batch_shape", ())) == 0
        )

    def _factor(self) -> tuple[Tensor, Tensor]:
        """``(L, alpha)`` of the training data, cached (no gradient to hyperparameters)."""
        key = self._cache_key()
        if self._cache_hit(key):
            return self._fast_cache[1], self._fast_cache[2]
        X, y = self.train_inputs[0], self.train_targets
        with torch.no_grad(), lazily_evaluate_kernels(False):
            prior = MultivariateNormal(
                self.mean_module(X), DenseLinearOperator(self.covar_module(X).to_dense())
            )
            noisy = self.likelihood(prior, [X])
            K = noisy.covariance_matrix
            L = psd_safe_cholesky(K)
            alpha = torch.cholesky_solve((y - prior.mean).unsqueeze(-1), L).squeeze(-1)
        self._fast_cache = (key, L, alpha)
        return L, alpha

    def _kernel(self, A: Tensor, B: Tensor) -> Tensor:
        """Dense ``k(A, B)`` (``batch x a x b``); an ARD RBF kernel is evaluated directly."""
        k = self.covar_module
        if type(k) is RBFKernel and k.active_dims is None:
            return rbf(A, B, k.lengthscale.detach())  # gradients flow to the inputs only
        with lazily_evaluate_kernels(False):
            return k(A, B).to_dense()

    def _prior_mean(self, X: Tensor) -> Tensor:
        """Prior mean at ``X`` (``batch x q x d`` -> ``batch x q``)."""
        m = self.mean_module
        if type(m) is ConstantMean and m.constant.dim() == 0:
            return m.constant.detach().expand(X.shape[:-1])
        return m(X)

    def _fast_moments(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Exact posterior mean and covariance of the latent function.

        Args:
            X: ``batch x q x d`` transformed inputs.

        Returns:
            Mean (``batch x q``) and covariance (``batch x q x q``) in the
            model's (standardized) outcome units.
        """
        L, alpha = self._factor()
        train_X = self.train_inputs[0]
        k_xX = self._kernel(X, train_X)  # batch x q x n
        k_xx = self._kernel(X, X)  # batch x q x q
        mean = self._prior_mean(X) + k_xX @ alpha
        # one triangular solve for every batch (broadcasting L over the batch copies it)
        n = L.shape[-1]
        rhs = k_xX.reshape(-1, n).transpose(-1, -2)  # n x (batch * q)
        V = torch.linalg.solve_triangular(L, rhs, upper=False).transpose(-1, -2)
        V = V.reshape(k_xX.shape)  # batch x q x n
        return mean, k_xx - V @ V.transpose(-1, -2)

    def _fast_mvn(self, X: Tensor) -> MultivariateNormal:
        """The exact posterior over ``batch x q`` points of ``X`` (``batch x q x d``)."""
        mean, cov = self._fast_moments(X)
        # a linear operator, so no Cholesky is taken until a sample needs one
        return MultivariateNormal(mean, DenseLinearOperator(cov))

    def joint_moments(self, X: Tensor) -> tuple[Tensor, Tensor] | None:
        """Mean and covariance of the posterior of ``f`` at ``X``, as plain tensors.

        The same numbers as ``posterior(X).mean`` and ``.covariance_matrix`` (no
        observation noise) without building a posterior object: the seam for
        Monte Carlo acquisitions that sample the joint posterior themselves
        (``acquisitions.noisy_ei``).

        Args:
            X: ``batch x q x d`` points.

        Returns:
            ``(mean, cov)`` of shapes ``batch x q`` and ``batch x q x q`` on the
            scale of the training outcomes, or ``None`` where the fast path does
            not apply (see ``posterior``; also an outcome transform other than
            ``Standardize``).
        """
        transform = getattr(self, "outcome_transform", None)
        if X.dim() < 3 or not self._fast_applies(X):
            return None
        if transform is not None and type(transform) is not Standardize:
            return None
        mean, cov = self._fast_moments(self.transform_inputs(X))
        if transform is not None:
            std = transform.stdvs.squeeze(-1)
            mean = mean * std + transform.means.squeeze(-1)
            cov = cov * transform._stdvs_sq.squeeze(-1)
        return mean, cov

    def posterior(
        self,
        X: Tensor,
        output_indices: list[int] | None = None,
        observation_noise: bool | Tensor = False,
        posterior_transform: Any = None,
        **kwargs: Any,
    ) -> Any:
        """As botorch's ``posterior``; exact and fast for an eval-mode single-output GP.

        Args:
            X: ``batch x q x d`` (or ``q x d``) points.
            output_indices: Must be ``None`` or ``[0]`` on the fast path.
            observation_noise: Add the likelihood's noise (bool or tensor).
            posterior_transform: Optional posterior transform.
            **kwargs: Passed to the parent on the fallback path.

        Returns:
            A ``GPyTorchPosterior`` on the scale of the training outcomes.
        """
        if kwargs or output_indices not in (None, [0]) or not self._fast_applies(X):
            return super().posterior(
                X,
                output_indices=output_indices,
                observation_noise=observation_noise,
                posterior_transform=posterior_transform,
                **kwargs,
            )
        self.eval()
        X = self.transform_inputs(X)
        mvn = self._fast_mvn(X)
        mvn = self._apply_noise(X=X, mvn=mvn, observation_noise=observation_noise)
        posterior = GPyTorchPosterior(distribution=mvn)
        if hasattr(self, "outcome_transform"):
            posterior = self.outcome_transform.untransform_posterior(posterior, X=X)
        if posterior_transform is not None:
            return posterior_transform(posterior=posterior, X=X)
        return posterior

    def condition_on_observations(self, X: Tensor, Y: Tensor, **kwargs: Any) -> Any:
        """As botorch's; first builds gpytorch's caches, which the fast path never made."""
        if self.prediction_strategy is None:
            # the input's values do not matter, only that gpytorch predicts once
            super().posterior(self.train_inputs[0][..., :1, :])
        return super().condition_on_observations(X, Y, **kwargs)


class FastSingleTaskGP(_FastPrediction, SingleTaskGP):
    """``SingleTaskGP`` with the fast exact ``posterior`` of this module."""


class FastMixedSingleTaskGP(_FastPrediction, MixedSingleTaskGP):
    """``MixedSingleTaskGP`` with the fast exact ``posterior`` of this module."""


def fast_mll_loss(model: Any) -> Any:
    """The negative exact marginal log likelihood of ``model``, without gpytorch's machinery.

    What ``ExactMarginalLogLikelihood`` computes (botorch's fitting loss), per
    training point: ``-(log N(y | m, K + noise I) + sum of the log priors) / n``,
    through one Cholesky factor on plain tensors. Fitting calls it 20-100 times
    per fit; the general path costs several times the arithmetic at tens to
    hundreds of points. A test checks value and gradients against gpytorch's.

    Args:
        model: A single-output ``SingleTaskGP`` (no batch, no input transform)
            with a constant mean, an ARD RBF kernel (optionally inside a
            ``ScaleKernel``) and a homoskedastic Gaussian likelihood.

    Returns:
        A closure ``() -> Tensor`` (the scalar loss, differentiable in the
        hyperparameters), or ``None`` when the model is not of that form or
        has more training points than gpytorch factorizes exactly
        (``gpytorch.settings.max_cholesky_size``, 800).
    """
    from gpytorch.kernels import ScaleKernel
    from gpytorch.likelihoods import GaussianLikelihood
    from gpytorch.settings import max_cholesky_size

    X, y = model.train_inputs[0], model.train_targets
    covar = model.covar_module
    base = covar.base_kernel if type(covar) is ScaleKernel else covar
    if (
        X.dim() != 2
        or X.shape[-2] > max_cholesky_size.value()  # gpytorch switches to CG + Lanczos
        or y.dim() != 1
        or getattr(model, "input_transform", None) is not None
        or type(model.mean_module) is not ConstantMean
        or model.mean_module.constant.dim() != 0
        or type(base) is not RBFKernel
        or base.active_dims is not None
        or covar.active_dims is not None
        or type(model.likelihood) is not GaussianLikelihood
    ):
        return None
    n = y.shape[-1]
    eye = torch.eye(n, dtype=X.dtype, device=X.device)
    log_2pi = torch.log(torch.tensor(2 * torch.pi, dtype=X.dtype))

    def loss() -> Tensor:
        K = rbf(X, X, base.lengthscale, same=True)
        if base is not covar:
            K = K * covar.outputscale
        K = K + model.likelihood.noise * eye
        L = psd_safe_cholesky(K)  # jitter, then NotPSDError, as gpytorch's own path
        r = (y - model.mean_module.constant).unsqueeze(-1)
        alpha = torch.cholesky_solve(r, L)
        log_lik = -0.5 * (r * alpha).sum() - L.diagonal().log().sum() - 0.5 * n * log_2pi
        for _, module, prior, closure, _ in model.named_priors():
            log_lik = log_lik + prior.log_prob(closure(module)).sum()
        return -log_lik / n

    return loss
