"""Decision-theoretic noisy expected improvement (Frazier, 2018, section 5).

``decision_nei`` values a candidate ``x`` by how much observing it (with
noise) is expected to raise the best posterior mean among the evaluated
points and ``x`` itself::

    EI_n(x) = E_n[max_{i <= n+1} mu_{n+1}(x_i)] - max_{i <= n} mu_n(x_i),
    mu_{n+1}(x_i) = mu_n(x_i) + s(x_i, x) Z,   Z ~ N(0, 1),
    s(x_i, x) = Sigma_n(x_i, x) / sqrt(Sigma_n(x, x) + tau^2),

with ``x_{n+1} = x`` and ``tau^2`` the observation-noise variance at ``x``.
The inner maximum is a maximum of lines in one standard normal, so for one
candidate and no pending points the value is exact: the lines are sorted by
slope, the dominated ones dropped, and with the breakpoints ``c`` of the upper
envelope ``EI_n(x) = sum (b_{i+1} - b_i) f(-|c_i|)``, ``f(z) = z Phi(z) +
phi(z)`` (the discrete knowledge-gradient algorithm of Frazier, Powell &
Dayanik, 2009). Every term is positive, so the sum is computed in log space
(botorch's ``_log_ei_helper`` for ``log f``) and the acquisition returns
**log EI_n(x)**: finite and with useful gradients far from the incumbent,
where EI itself underflows to zero. Means, covariances and the noise come from
``model.posterior`` on the joint of evaluated points and candidate, on the
scale of ``Y`` (outcome transforms included); the noise is
``posterior(x, observation_noise=True).variance - posterior(x).variance``.

With pending (running or failed) points ``P`` or a joint batch of ``q > 1``
candidates the value is the gain of observing the candidates on top of the
pending points, ``E[max mu after P and X] - E[max mu after P]`` over evaluated,
pending and candidate points (the total gain less the pending points' own,
a constant in ``X``). It is estimated by seeded quasi-Monte Carlo over
the noisy observations of ``P`` and of all candidates but the last, each
sample conditioning the means by the Gaussian update
``mu + Sigma(., W) (Sigma(W, W) + tau^2 I)^-1 (y_W - mu_W)``, and exact (the
envelope again) over the last candidate's observation. The estimate is smooth
in ``X``, never negative (samples of the joint batch come in antithetic
pairs), so it too is returned as a log; for ``q = 1`` without pending points
it is the exact value.

How it differs from the other noisy EIs:

- ``qlognei`` / ``qnei`` (Letham et al., 2019): the expected improvement of
  the new point's *latent value* over the best *latent value* among the
  evaluated points, integrated over their joint posterior. Its improvement is
  measured in function values that are never observed; ``decision_nei``
  measures it in posterior means, the quantity a final recommendation uses
  (``Optimizer.recommend``), and charges the noise of the new observation.
- botorch's ``NoisyExpectedImprovement``: analytic EI averaged over fantasy
  models conditioned on sampled observations at the evaluated points, a
  third meaning; it is not used here.
- Noise-free (``tau^2 -> 0``) the evaluated points' lines are flat at their
  posterior means (the observed values when the GP interpolates), and
  ``decision_nei`` is exactly expected improvement over the best of them.

Only models with a Gaussian joint posterior on ``Y``'s scale are supported
(``gp``, ``ibnn``, ``dkl``); sample-based surrogates (``EnsemblePosterior``:
``ensemble``, ``hmc_bnn``) and non-Gaussian outcome warping are refused with
the reason; use ``qlognei`` there. Evaluated points whose posterior mean is
more than ``PRUNE_SIGMAS`` (summed posterior standard deviations) below the
best mean are dropped (``prune_baseline``): each one changes the value by at
most ``(s_i + s_best) f(-PRUNE_SIGMAS)`` (below ``6e-8 (s_i + s_best)``).
Cost per evaluation: one joint posterior of the kept evaluated points and
the candidates, and an ``O(N^2)`` envelope test per row (and per sample) over
its ``N`` lines. At 100 noisy evaluated points (24 kept) and 512 candidates,
about 0.1 s (0.25 s with gradients) on one busy CPU core, two to three times
``qlognei``; with pending points the 64 samples make it up to 15 times that.
"""

from __future__ import annotations

import math
import warnings

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.analytic import _log_ei_helper
from botorch.models.model import Model
from botorch.utils.sampling import draw_sobol_normal_samples
from botorch.utils.transforms import t_batch_mode_transform
from gpytorch.utils.warnings import NumericalWarning
from torch import Tensor

from acquisitions.base import Acquisition, AcquisitionContext, UnsupportedModelError

__all__ = ["DecisionNEI", "DecisionNoisyExpectedImprovement", "log_expected_max_gain"]

#: Drop evaluated points this many summed standard deviations below the best mean.
PRUNE_SIGMAS = 5.0
#: Elements per chunk of the envelope test and of the candidates (bounds the memory).
_CHUNK_ELEMENTS = 2**21
#: Floor of the new observation's variance on Y's scale (as botorch's analytic EI).
_MIN_VARIANCE = 1e-12
#: Returned instead of a log value of ``-inf`` (every line flat: nothing to gain).
_LOG_FLOOR = -1e6


def _logsumexp(x: Tensor, dim: int) -> Tensor:
    """``logsumexp`` that returns ``-inf`` (with zero gradient) for all ``-inf`` slices."""
    some = (x > -math.inf).any(dim, keepdim=True)
    out = torch.logsumexp(torch.where(some, x, torch.zeros_like(x)), dim)
    return torch.where(some.squeeze(dim), out, torch.full_like(out, -math.inf))


def _on_envelope(a: Tensor, b: Tensor) -> Tensor:
    """Which lines ``a + b z`` (``R x N``, sorted by slope, then intercept) are highest somewhere.

    Line ``i`` is highest on ``[lo_i, hi_i]``: past its crossings with the
    lines before it (flatter) and before its crossings with the lines after
    it (steeper). A later parallel line is at least as high, so it empties the
    interval; a line highest at a single point (three lines crossing there)
    is left out too.

    Returns:
        ``R x N`` booleans.
    """
    da = a.unsqueeze(-2) - a.unsqueeze(-1)  # [..., i, j] = a_j - a_i
    db = b.unsqueeze(-1) - b.unsqueeze(-2)  # b_i - b_j
    z = torch.where(db == 0, -math.inf, da / db)  # crossing; parallel: see above
    N = a.shape[-1]
    before = torch.ones(N, N, dtype=torch.bool, device=a.device).tril(-1)
    lo = torch.where(before, z, -math.inf).amax(-1)
    hi = torch.where(before.T, z, math.inf).amin(-1)
    return lo < hi


def log_expected_max_gain(a: Tensor, b: Tensor) -> Tensor:
    """``log(E[max_i (a_i + b_i Z)] - max_i a_i)`` for ``Z ~ N(0, 1)``, exactly.

    The discrete knowledge-gradient algorithm (Frazier, Powell & Dayanik,
    2009) in log space: with the lines of the upper envelope in slope order
    and ``c`` the crossing of neighbours ``l`` and ``r``, the gain is
    ``sum (b_r - b_l) f(-|c|)``. Which lines form the envelope is decided
    without gradients (``O(N^2)`` per row, in chunks); the value is
    differentiable in ``a`` and ``b`` almost everywhere.

    Args:
        a: ``... x N`` intercepts.
        b: ``... x N`` slopes (broadcastable to ``a``'s shape).

    Returns:
        ``...`` log gains; ``-inf`` where one line is highest everywhere.
    """
    a, b = torch.broadcast_tensors(a, b)
    shape, N = a.shape[:-1], a.shape[-1]
    a, b = a.reshape(-1, N), b.reshape(-1, N)
    perm = torch.sort(a.detach(), dim=-1).indices  # by slope, ties by intercept
    perm = perm.gather(-1, torch.sort(b.detach().gather(-1, perm), dim=-1, stable=True).indices)
    a, b = a.gather(-1, perm), b.gather(-1, perm)
    with torch.no_grad():
        chunk = max(1, _CHUNK_ELEMENTS // (N * N))
        pieces = zip(a.detach().split(chunk), b.detach().split(chunk), strict=True)
        on = torch.cat([_on_envelope(ac, bc) for ac, bc in pieces])
        idx = torch.arange(N, device=a.device).expand_as(on)
        nxt = torch.where(on, idx, N).flip(-1).cummin(-1).values.flip(-1)  # first on line >= i
        nxt = torch.cat([nxt[:, 1:], torch.full_like(nxt[:, :1], N)], dim=-1)
        valid = on & (nxt < N)
        right = torch.where(valid, nxt, idx)
    db = b.gather(-1, right) - b
    db = torch.where(valid, db, torch.ones_like(db))
    c = (a - a.gather(-1, right)) / db  # where the neighbours cross
    u = (-c.abs()).clamp_min(-1e50)
    terms = torch.where(valid, db.log() + _log_ei_helper(u), torch.full_like(u, -math.inf))
    return _logsumexp(terms, -1).reshape(shape)


class DecisionNoisyExpectedImprovement(AcquisitionFunction):
    """Log of Frazier's (2018) decision-theoretic noisy EI; see the module docstring.

    Args:
        model: A single-output model with a Gaussian posterior on ``Y``'s scale.
        X_baseline: ``n x d`` evaluated points.
        X_pending: ``p x d`` pending points, or ``None``.
        num_samples: Quasi-Monte Carlo samples used with pending points or
            ``q > 1`` (rounded up to even); unused on the exact path.
        seed: Seed of the quasi-random samples (the value is deterministic).
        prune_baseline: Drop evaluated points that cannot matter (``PRUNE_SIGMAS``).
    """

    _log = True

    def __init__(
        self,
        model: Model,
        X_baseline: Tensor,
        X_pending: Tensor | None = None,
        num_samples: int = 64,
        seed: int = 0,
        prune_baseline: bool = True,
    ) -> None:
        super().__init__(model)
        self.num_samples = int(num_samples) + int(num_samples) % 2
        self.seed = int(seed)
        with torch.no_grad(), warnings.catch_warnings():
            # gpytorch rounds the (tiny, negative) variances at noise-free data up
            warnings.simplefilter("ignore", NumericalWarning)
            post = model.posterior(X_baseline)
            mean = post.mean.squeeze(-1)
            var = post.variance.squeeze(-1)
            std = var.clamp_min(0).sqrt()
            best = int(mean.argmax())
            keep = mean - mean[best] >= -PRUNE_SIGMAS * (std + std[best])
            keep[best] = True
            i = int(var.argmax())  # the noise, where the variances are not rounded
            self._noise = self._constant_noise(model, X_baseline[i : i + 1])
        self.X_baseline = X_baseline[keep] if prune_baseline else X_baseline
        self._samples: dict[tuple[int, int], Tensor] = {}
        self.set_X_pending(X_pending)

    @staticmethod
    def _constant_noise(model: Model, x: Tensor) -> Tensor | None:
        """The noise variance on ``Y``'s scale if the likelihood is homoskedastic."""
        from gpytorch.likelihoods import FixedNoiseGaussianLikelihood, GaussianLikelihood
        from gpytorch.likelihoods.noise_models import HomoskedasticNoise

        lik = getattr(model, "likelihood", None)
        homoskedastic = isinstance(lik, FixedNoiseGaussianLikelihood) or (
            isinstance(lik, GaussianLikelihood) and isinstance(lik.noise_covar, HomoskedasticNoise)
        )
        return _noise_at(model, x).reshape(()) if homoskedastic else None

    def set_X_pending(self, X_pending: Tensor | None = None) -> None:
        """Set the ``p x d`` pending points (observed before the candidates)."""
        if X_pending is not None and X_pending.shape[-2] == 0:
            X_pending = None
        super().set_X_pending(X_pending)
        X_S = self.X_baseline
        if self.X_pending is not None:
            X_S = torch.cat([X_S, self.X_pending.to(X_S)], dim=-2)
            with torch.no_grad():
                self._noise_P = self._noise_of(self.X_pending.to(X_S))
        self._X_S = X_S

    def _noise_of(self, X: Tensor) -> Tensor:
        """Noise variances ``...`` at ``... x d`` points."""
        if self._noise is not None:
            return self._noise.expand(X.shape[:-1])
        return _noise_at(self.model, X)

    def _base_samples(self, dim: int, q: int) -> Tensor:
        """``M x dim`` seeded normal samples; antithetic in the batch part when ``q > 1``."""
        key = (dim, q)
        if key not in self._samples:
            kw = {"dtype": self._X_S.dtype, "device": self._X_S.device, "seed": self.seed}
            if q == 1:
                w = draw_sobol_normal_samples(dim, self.num_samples, **kw)
            else:
                half = draw_sobol_normal_samples(dim, self.num_samples // 2, **kw)
                sign = torch.ones(dim, **{k: kw[k] for k in ("dtype", "device")})
                sign[dim - (q - 1) :] = -1.0
                w = torch.cat([half, half * sign])
            self._samples[key] = w
        return self._samples[key]

    @t_batch_mode_transform()
    def forward(self, X: Tensor) -> Tensor:
        """Log decision NEI of each ``q``-batch.

        Args:
            X: ``batch x q x d`` candidates.

        Returns:
            ``batch`` log values.
        """
        batch, (q, d) = X.shape[:-2], X.shape[-2:]
        X = X.reshape(-1, q, d)
        nW = (0 if self.X_pending is None else self.X_pending.shape[-2]) + q - 1
        per_row = (self.num_samples if nW else 1) * (self._X_S.shape[-2] + q)
        chunk = max(1, _CHUNK_ELEMENTS // per_row)
        out = torch.cat([self._log_value(Xc) for Xc in X.split(chunk)])
        out = torch.where(torch.isfinite(out), out, torch.full_like(out, _LOG_FLOOR))
        return out.reshape(batch)

    def _log_value(self, X: Tensor) -> Tensor:
        """``B x q x d`` candidates -> ``B`` log values."""
        B, q, d = X.shape
        m = self._X_S.shape[-2]
        p = 0 if self.X_pending is None else self.X_pending.shape[-2]
        n = m - p
        mvn = self.model.posterior(torch.cat([self._X_S.expand(B, m, d), X], dim=-2)).distribution
        mu = mvn.mean  # B x N
        cols = mvn.lazy_covariance_matrix[..., :, n:].to_dense()  # B x N x (p + q)
        tau2 = self._noise_of(X)  # B x q
        if p:
            tau2 = torch.cat([self._noise_P.expand(B, p), tau2], dim=-1)
        nW = p + q - 1
        sig_x = cols[..., -1]  # Sigma(., x) for the last candidate x
        if nW == 0:
            a, a_P = mu.unsqueeze(-2), mu.unsqueeze(-2)  # B x 1 x N
        else:
            sig_W = cols[..., :nW]  # B x N x nW
            C = sig_W[..., n : n + nW, :] + torch.diag_embed(tau2[..., :nW])
            L = _cholesky(C)
            Gt = torch.linalg.solve_triangular(L, sig_W.transpose(-1, -2), upper=False)
            w = self._base_samples(nW, q)  # M x nW
            a = mu.unsqueeze(-2) + w @ Gt  # B x M x N
            a_P = a if q == 1 else mu.unsqueeze(-2) + w[:, :p] @ Gt[..., :p, :]
            sig_x = sig_x - (Gt * Gt[..., -1:]).sum(-2)
        var_y = (sig_x[..., -1].clamp_min(0) + tau2[..., -1]).clamp_min(_MIN_VARIANCE)
        slopes = (sig_x / var_y.sqrt().unsqueeze(-1)).unsqueeze(-2)  # B x 1 x N
        log_env = log_expected_max_gain(a, slopes)  # B x M
        gain = a.amax(-1) - a_P[..., :m].amax(-1)  # B x M, signed only when q > 1
        g = 2 if (q > 1 and nW) else 1  # antithetic pairs: (r, r + M/2)
        M = a.shape[-2]
        log_env = log_env.reshape(B, g, M // g) - math.log(g)
        gain = gain.reshape(B, g, M // g).mean(-2, keepdim=True)
        log_gain = torch.where(
            gain > 0,
            gain.clamp_min(torch.finfo(gain.dtype).tiny).log(),
            torch.full_like(gain, -math.inf),
        )
        per_sample = _logsumexp(torch.cat([log_env, log_gain], dim=-2), -2)  # B x M/g
        return _logsumexp(per_sample, -1) - math.log(M // g)


def _noise_at(model: Model, X: Tensor) -> Tensor:
    """Observation-noise variance on ``Y``'s scale at ``... x d`` points ``X``."""
    noisy = model.posterior(X, observation_noise=True).variance
    return (noisy - model.posterior(X).variance).clamp_min(0).squeeze(-1)


def _cholesky(C: Tensor) -> Tensor:
    """Cholesky factor of ``... x k x k`` covariances, with jitter if needed."""
    from linear_operator.utils.cholesky import psd_safe_cholesky

    return psd_safe_cholesky(C)


class DecisionNEI(Acquisition):
    """Frazier's decision-theoretic noisy EI (log value); exact for one point.

    Args:
        num_samples: Quasi-Monte Carlo samples over the observations of the
            pending points and of all but one of a joint batch (the exact
            path for one candidate without pending points uses none).
        prune_baseline: Drop evaluated points whose posterior mean is
            ``PRUNE_SIGMAS`` standard deviations below the best (they cannot
            change the value by more than ``6e-8`` of those deviations).
    """

    name = "decision_nei"

    def __init__(self, *, num_samples: int = 64, prune_baseline: bool = True) -> None:
        if int(num_samples) < 1:
            raise ValueError(f"num_samples: expected a positive integer, got {num_samples!r}.")
        self.num_samples = int(num_samples)
        self.prune_baseline = bool(prune_baseline)

    def check_model(self, model: Model) -> None:
        """Refuse models without a Gaussian single-output posterior, with the reason."""
        from botorch.models.ensemble import EnsembleModel

        if isinstance(model, EnsembleModel):
            raise UnsupportedModelError(
                "decision_nei needs a Gaussian joint posterior (means and covariances "
                f"on Y's scale); {type(model).__name__} is sample based (EnsemblePosterior). "
                "Use qlognei or qnei, which integrate over the ensemble members."
            )
        try:
            batch_shape = tuple(model.batch_shape)
        except (AttributeError, NotImplementedError):
            batch_shape = ()
        if getattr(model, "num_outputs", 1) != 1 or batch_shape:
            raise UnsupportedModelError(
                "decision_nei needs a single-output, non-batched model; got "
                f"{type(model).__name__} with num_outputs={model.num_outputs} and "
                f"batch_shape={batch_shape}."
            )

    def build(self, model: Model, context: AcquisitionContext) -> AcquisitionFunction:
        """Build the acquisition on the evaluated and pending points of ``context``."""
        from botorch.posteriors.gpytorch import GPyTorchPosterior
        from gpytorch.distributions import MultitaskMultivariateNormal

        self.check_model(model)
        with torch.no_grad():
            post = model.posterior(context.X_baseline[:1])
        if not isinstance(post, GPyTorchPosterior) or isinstance(
            post.distribution, MultitaskMultivariateNormal
        ):
            raise UnsupportedModelError(
                "decision_nei needs a Gaussian posterior on Y's scale; the model returns "
                f"{type(post).__name__} (e.g. a non-Gaussian outcome warping). Use qlognei."
            )
        return DecisionNoisyExpectedImprovement(
            model,
            context.X_baseline,
            X_pending=context.X_pending,
            num_samples=self.num_samples,
            seed=context.seed,
            prune_baseline=self.prune_baseline,
        )
