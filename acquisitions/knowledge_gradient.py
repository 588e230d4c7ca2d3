"""Knowledge gradient: the expected gain in the best posterior mean from one more evaluation.

``KG(x) = E_n[max_x' mu_{n+1}(x')] - max_x' mu_n(x')`` (Frazier et al., 2009;
Wu & Frazier, 2016), with ``mu_{n+1}`` the posterior mean after observing
``y(x)`` (noise included). Two forms, chosen by the domain:

- continuous domains, one point: botorch's one-shot ``qKnowledgeGradient``
  (Balandat et al., 2020), ``num_fantasies`` quasi-random fantasies whose
  inner maximizers are optimized jointly with ``x`` (the acquisition optimizer
  handles the augmented batch). Pending points join the fantasized batch;
- every other case (discrete, categorical and finite domains, where the
  one-shot form's extra points cannot be optimized, and batches, which the
  optimizer builds sequentially): the discrete knowledge gradient over a
  finite set ``A`` (``num_discrete`` points of the domain from
  ``acquisitions.discretize``, plus the evaluated points, plus ``x`` itself),
  computed exactly: ``mu_{n+1}(a) = mu_n(a) + s(a, x) Z`` with
  ``s(a, x) = Sigma_n(a, x) / sqrt(Sigma_n(x, x) + tau^2)`` and one standard
  normal ``Z``, so the expectation of their maximum is a sum over the upper
  envelope of lines (``expected_max_affine``). Pending points are treated as
  observed at their posterior mean (the "kriging believer"): the posterior
  mean is unchanged and the covariances shrink. Values are on the model's
  internal (standardized) outcome scale, which only rescales them.

Both need an exact GPyTorch GP with a Gaussian likelihood (``fantasize``,
exact posterior covariances from the kernel); ``acquisitions.matrix`` refuses
other models with the reason.
"""

from __future__ import annotations

import math

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.knowledge_gradient import qKnowledgeGradient
from botorch.models.model import Model
from botorch.sampling.normal import SobolQMCNormalSampler
from botorch.utils.transforms import t_batch_mode_transform
from torch import Tensor

from acquisitions.base import Acquisition, AcquisitionContext
from acquisitions.discretize import discretization
from acquisitions.matrix import MatrixChecked
from acquisitions.optimize import choose_strategy

__all__ = ["DiscreteKnowledgeGradient", "KnowledgeGradient", "expected_max_affine"]

#: Breakpoints beyond this many standard deviations are treated as infinite.
_Z_MAX = 40.0
#: Lines that cannot be the maximum for ``|Z|`` up to this are dropped before the pairwise step.
_Z_PRUNE = 8.0
#: Elements of the pairwise ``m x m`` intermediates processed at once.
_CHUNK_ELEMENTS = 2_000_000


def _phi(z: Tensor) -> Tensor:
    return torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _expected_max_affine(a: Tensor, b: Tensor) -> Tensor:
    a0 = a - a.max(dim=-1, keepdim=True).values
    m = a.shape[-1]
    ai, aj = a0.unsqueeze(-1), a0.unsqueeze(-2)
    bi, bj = b.unsqueeze(-1), b.unsqueeze(-2)
    same = bi == bj
    idx = torch.arange(m, device=a.device)
    earlier = idx.unsqueeze(0) < idx.unsqueeze(-1)  # [i, j]: j < i
    # among lines with equal slopes only the highest (first, on ties) can be maximal
    dominated = (same & ((aj > ai) | ((aj == ai) & earlier))).any(dim=-1)
    other = ~dominated.unsqueeze(-2)
    diff = bj - bi
    cross = ((ai - aj) / torch.where(same, torch.ones_like(diff), diff)).clamp(-_Z_MAX, _Z_MAX)
    inf = torch.full_like(cross, _Z_MAX)
    upper = torch.where(other & (diff > 0), cross, inf).amin(dim=-1)
    lower = torch.where(other & (diff < 0), cross, -inf).amax(dim=-1)
    valid = ~dominated & (lower < upper)
    mass = torch.where(
        lower > 0,
        torch.special.ndtr(-lower) - torch.special.ndtr(-upper),
        torch.special.ndtr(upper) - torch.special.ndtr(lower),
    )
    terms = a0 * mass + b * (_phi(lower) - _phi(upper))
    return torch.where(valid, terms, torch.zeros_like(terms)).sum(dim=-1)


def _relevant(a: Tensor, b: Tensor, z_max: float = _Z_PRUNE) -> Tensor:
    """``batch x m`` mask of lines that can be the maximum somewhere in ``[-z_max, z_max]``.

    Exact test against a lower bound ``e(z)`` of the envelope: the maximum of
    the line of largest intercept and the two steepest lines. ``a_i + b_i z -
    e(z)`` is piecewise linear, so its maximum over the interval sits at an
    end or a crossing of those three lines.
    """
    pick = torch.stack([a.argmax(-1), b.argmax(-1), b.argmin(-1)], dim=-1)  # batch x 3
    la, lb = a.gather(-1, pick), b.gather(-1, pick)
    i, j = (0, 0, 1), (1, 2, 2)
    db = lb[..., i] - lb[..., j]
    crossings = (lb.new_tensor(0.0) - (la[..., i] - la[..., j])) / torch.where(
        db == 0, torch.ones_like(db), db
    )
    ends = la.new_tensor([-z_max, z_max]).expand(*a.shape[:-1], 2)
    z = torch.cat([ends, crossings.clamp(-z_max, z_max)], dim=-1)  # batch x 5
    envelope = (la.unsqueeze(-1) + lb.unsqueeze(-1) * z.unsqueeze(-2)).amax(dim=-2)
    gap = (a.unsqueeze(-1) + b.unsqueeze(-1) * z.unsqueeze(-2) - envelope.unsqueeze(-2)).amax(-1)
    tol = 1e-12 * (a.abs().amax(-1, keepdim=True) + z_max * b.abs().amax(-1, keepdim=True))
    return gap >= -tol


def expected_max_affine(a: Tensor, b: Tensor) -> Tensor:
    """``E[max_i (a_i + b_i Z)] - max_i a_i`` for one standard normal ``Z``, exactly.

    Line ``i`` is the maximum on the interval ``(L_i, U_i)`` between its
    crossings with steeper and flatter lines, so the expectation is
    ``sum_i a_i (Phi(U_i) - Phi(L_i)) + b_i (phi(L_i) - phi(U_i))``.
    Lines that cannot be the maximum for ``|Z| <= 8`` are dropped first (an
    exact test; beyond 8 standard deviations the neglected mass is ``1e-15``),
    then the remaining ``k`` lines are compared pairwise (``O(k^2)``).
    Differentiable.

    Args:
        a: ``batch x m`` intercepts (current means).
        b: ``batch x m`` slopes.

    Returns:
        ``batch`` non-negative values.
    """
    a, b = torch.broadcast_tensors(a, b)
    shape, m = a.shape[:-1], a.shape[-1]
    a2, b2 = a.reshape(-1, m), b.reshape(-1, m)
    with torch.no_grad():
        keep = _relevant(a2, b2)
        k = int(keep.sum(-1).max())
        order = torch.where(keep, 0, 1).argsort(dim=-1, stable=True)[..., :k]
        kept = keep.gather(-1, order)
    a_max = a2.max(-1, keepdim=True).values
    # padded rows repeat a kept line far below the maximum: never maximal
    a2 = torch.where(kept, a2.gather(-1, order), a_max - 1e6 * (1 + a_max.abs()))
    b2 = torch.where(kept, b2.gather(-1, order), torch.zeros_like(a2))
    step = max(1, _CHUNK_ELEMENTS // (k * k))
    out = [
        _expected_max_affine(a2[i : i + step], b2[i : i + step])
        for i in range(0, a2.shape[0], step)
    ]
    return torch.cat(out).clamp_min(0.0).reshape(shape)


class DiscreteKnowledgeGradient(AcquisitionFunction):
    """The knowledge gradient over ``A`` plus the candidate, for an exact GPyTorch GP.

    Args:
        model: An exact single-output GPyTorch GP with a Gaussian likelihood.
        A: ``m x d`` points (encoded inputs) over which the best mean is taken.
        X_pending: ``p x d`` points treated as observed at their posterior mean.
    """

    def __init__(self, model: Model, A: Tensor, X_pending: Tensor | None = None) -> None:
        super().__init__(model=model)
        self.register_buffer("A", A)
        self.set_X_pending(X_pending)

    def set_X_pending(self, X_pending: Tensor | None = None) -> None:
        """Set the pending points and refresh the cached posterior (kriging believer)."""
        super().set_X_pending(X_pending)
        with torch.no_grad():
            self._prepare()

    def _prepare(self) -> None:
        model = self.model
        kernel, mean = model.covar_module, model.mean_module
        X = model.train_inputs[0]
        y = model.train_targets
        noise = model.likelihood.noise_covar(shape=X.shape[:-1]).to_dense().diagonal()
        try:
            tau2 = model.likelihood.noise_covar(shape=torch.Size([1])).to_dense().reshape(())
        except Exception:  # noqa: BLE001 -- e.g. fixed-noise likelihoods need the points
            tau2 = noise.mean()
        L, alpha = self._factor(X, y, noise)
        if self.X_pending is not None:
            P = model.transform_inputs(self.X_pending)
            yP = mean(P) + kernel(P, X).to_dense() @ alpha
            X, y = torch.cat([X, P]), torch.cat([y, yP])
            noise = torch.cat([noise, tau2.expand(P.shape[0])])
            L, alpha = self._factor(X, y, noise)
        A = model.transform_inputs(self.A)
        kXA = kernel(X, A).to_dense()
        self._X, self._L, self._alpha, self._A, self._tau2 = X, L, alpha, A, tau2
        self._mu_A = mean(A) + kXA.mT @ alpha
        self._W = torch.linalg.solve_triangular(L, kXA, upper=False)

    def _factor(self, X: Tensor, y: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
        K = self.model.covar_module(X).to_dense() + torch.diag_embed(noise)
        eye = torch.eye(K.shape[-1], dtype=K.dtype, device=K.device)
        for jitter in (0.0, 1e-8, 1e-6, 1e-4):
            L, info = torch.linalg.cholesky_ex(K + jitter * K.diagonal().mean() * eye)
            if int(info) == 0:
                break
        else:
            raise RuntimeError("knowledge gradient: the kernel matrix is not positive definite")
        r = (y - self.model.mean_module(X)).unsqueeze(-1)
        return L, torch.cholesky_solve(r, L).squeeze(-1)

    @t_batch_mode_transform()
    def forward(self, X: Tensor) -> Tensor:
        """The knowledge gradient of observing each ``x``.

        Optimizers propose batches sequentially (each new point pending for
        the next); for a ``q``-point batch this returns the sum of the
        points' single-point values, a summary the optimizers only report.

        Args:
            X: ``batch x q x d`` candidate points.

        Returns:
            ``batch`` values (model's internal outcome scale).
        """
        return self._single(X.reshape(-1, 1, X.shape[-1])).reshape(X.shape[:-1]).sum(-1)

    def _single(self, X: Tensor) -> Tensor:
        kernel = self.model.covar_module
        x = self.model.transform_inputs(X)
        kxX = kernel(x, self._X).to_dense()  # batch x 1 x n
        v = torch.linalg.solve_triangular(self._L, kxX.mT, upper=False)  # batch x n x 1
        mu_x = self.model.mean_module(x) + (kxX @ self._alpha.unsqueeze(-1)).squeeze(-1)
        var_x = (kernel(x, x).to_dense().squeeze(-1) - (v * v).sum(dim=-2)).clamp_min(0.0)
        cov = kernel(x, self._A).to_dense() - v.mT @ self._W  # batch x 1 x m
        scale = (var_x + self._tau2).clamp_min(1e-12).sqrt()
        a = torch.cat([self._mu_A.expand(*mu_x.shape[:-1], -1), mu_x], dim=-1)
        b = torch.cat([cov.squeeze(-2), var_x], dim=-1) / scale
        return expected_max_affine(a, b)


class KnowledgeGradient(MatrixChecked, Acquisition):
    """One-shot knowledge gradient on continuous domains, the discrete one elsewhere.

    Args:
        num_fantasies: Fantasies of the one-shot form (quasi-random, seeded).
        num_discrete: Points of the domain in the discrete form's set ``A``
            (besides the evaluated points and the candidate).
    """

    name = "kg"

    def __init__(self, *, num_fantasies: int = 32, num_discrete: int = 256) -> None:
        for label, value in (("num_fantasies", num_fantasies), ("num_discrete", num_discrete)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{label}: expected a positive integer, got {value!r}.")
        self.num_fantasies = num_fantasies
        self.num_discrete = num_discrete

    @staticmethod
    def one_shot_applies(context: AcquisitionContext) -> bool:
        """Whether the one-shot form is used: a continuous domain and one point.

        ``acquisitions.optimize`` builds batches sequentially (which botorch
        refuses for one-shot acquisitions) and optimizes discrete and finite
        domains with optimizers that cannot carry the fantasy points.
        """
        return context.q == 1 and choose_strategy(context.domain) == "continuous"

    def build(self, model: Model, context: AcquisitionContext) -> AcquisitionFunction:
        """``qKnowledgeGradient`` or ``DiscreteKnowledgeGradient`` (see ``one_shot_applies``)."""
        self.check_model(model)
        if self.one_shot_applies(context):
            sampler = SobolQMCNormalSampler(
                sample_shape=torch.Size([self.num_fantasies]), seed=context.seed
            )
            return qKnowledgeGradient(
                model,
                num_fantasies=self.num_fantasies,
                sampler=sampler,
                X_pending=context.X_pending,
            )
        A = discretization(
            context.domain, self.num_discrete, context.seed, include=context.X_baseline
        )
        return DiscreteKnowledgeGradient(model, A, X_pending=context.X_pending)

    def __repr__(self) -> str:
        return (
            f"KnowledgeGradient(num_fantasies={self.num_fantasies}, "
            f"num_discrete={self.num_discrete})"
        )
