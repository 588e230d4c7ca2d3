"""Fully Bayesian MLP whose weights are sampled by NUTS (pyro-ppl).

The model, on outcomes warped towards normality (a Yeo-Johnson transform
fitted to ``Y``, ``surrogates.warping``; ``warp=False`` skips it) and
standardized to zero mean and unit variance::

    theta_j ~ N(0, prior_var / fan_in_j)     weights (biases: N(0, bias_var)),
              times exp(a_i) for row i of the first layer (ARD) and
              exp(c) for the output layer (amplitude)
    a_i, c  ~ N(0, ard_scale^2), N(0, output_scale^2)
    sigma   ~ LogNormal(log(noise_prior_loc), noise_prior_scale)   (or fixed)
    y_i     ~ N(f_theta(x_i), sigma^2)

with ``f_theta`` a tanh MLP on inputs centred to ``[-1, 1]`` (categoricals
one-hot). The learned input and output scales play the part of a GP's
lengthscales and outputscale (Neal's ARD priors for BNNs); without them
the network underfits anisotropic functions or explains them as noise.

Sampling: the weights are non-centred (``theta = std * eps`` with ``eps``
a priori standard normal) and sampled with ``a``, ``c`` and ``log sigma``
by Pyro's NUTS (diagonal mass matrix and step size adapted in warm-up).
The log joint and its gradient are written by hand in torch over one flat
vector (``surrogates.hmc_potential``) and given to NUTS as ``potential_fn``.
Each of ``num_chains`` chains starts from its own prior draw moved towards
a MAP estimate by ``map_steps`` Adam steps; chains run one after the other.
Short chains explore little beyond their starting mode, so several chains,
rather than one long one, give the ensemble its spread (measured on the 5-D
toy problem of the tests, 3 seeds: the 90% intervals of one chain of
100 + 100 draws covered 75% of held-out points, those of four chains of
50 + 25 covered 88%, for 1.5x the cost).

The kept draws become a ``SampledNetworkModel`` (``surrogates.nn``): an
``EnsemblePosterior`` that an index sampler makes deterministic;
``observation_noise=True`` adds each draw's ``sigma^2``. With the warp, a
``WarpedNetworkModel`` maps every member back through the inverse warp.
The warp matters for objectives with long tails: on Branin (values 0.4 to
300) the unwarped networks call the shallow valley near the optimum noise.

Cost: at most ``num_chains x (num_warmup + num_samples) x (2^max_tree_depth
- 1)`` leapfrog steps (the tree depth nearly always saturates) of about
0.6 ms each on one CPU core, almost independent of the number of
observations: the defaults (4 x 75 x 63, about 17 000 steps) take about
11 s per fit, and one ``ask()`` at 100 observations in 6-D took 11-14 s
wall, 11-13 s CPU (one thread, ``benchmarks/hmc_ask_time.py``), leaving
room within a ~30 s budget for a shared machine. With the defaults, the 90%
predictive intervals covered 95% (1-D) and 88% (5-D) of held-out points of
the toy problems of the tests (30 points, 5 seeds pooled); on Branin
(``python -m bayesopt surrogate=hmc_bnn task=branin n_trials=25``) the
regret was 0.050, 0.092, 0.018, 1.55 and 0.011 for seeds 0-4 (median 0.050;
2026-11-26, with the screened multi-start of ``acquisitions.optimize``); in
the bad seed the proposals stay at the edges of the domain, where the
ensemble's spread is largest.

Warm starts: ``last_state`` keeps the mean adapted step size and the mean
``log sigma`` of the draws (two numbers); the next fit starts its
step-size search and its noise level there. Nothing else carries over, so
a fit depends only on its data, ``seed`` and ``init``.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from surrogates.base import Column, FitError, Surrogate
from surrogates.features import FeatureMap
from surrogates.hmc_potential import ACTIVATIONS, LogJoint, Potential
from surrogates.nn import MLPSpec, NetworkEnsemblePosterior, SampledNetworkModel
from surrogates.warping import YeoJohnson

__all__ = ["HMCBNNSurrogate", "WarpedNetworkModel"]

logger = logging.getLogger(__name__)


class WarpedNetworkModel(SampledNetworkModel):
    """A ``SampledNetworkModel`` trained on Yeo-Johnson-warped outcomes, mapped back to ``Y``.

    The networks (and ``y_mean``, ``y_std``, ``noise_var``) live in the warped
    space; member values are mapped back exactly through the inverse warp.
    With ``observation_noise=True`` each member's noisy outcome is summarized
    by its mean and variance on the scale of ``Y`` (Gauss-Hermite quadrature
    of its Gaussian noise through the inverse warp), so ``mean`` and
    ``variance`` are the mixture's exactly and samples are Gaussian per member.

    Args:
        *args: As ``SampledNetworkModel``.
        warp: The fitted ``YeoJohnson`` transform (in eval mode).
        **kwargs: As ``SampledNetworkModel``.
    """

    def __init__(self, *args: Any, warp: YeoJohnson, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warp = warp

    def forward(self, X: Tensor) -> Tensor:
        """``batch x S x q x 1`` member predictions on the scale of ``Y``."""
        return self.warp.untransform(super().forward(X))[0]

    def _moments(self, mean: Tensor, var: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance on the scale of ``Y`` of ``N(mean, var)`` warped outcomes."""
        nodes, weights = np.polynomial.hermite_e.hermegauss(24)
        nodes, weights = mean.new_tensor(nodes), mean.new_tensor(weights / weights.sum())
        values = mean.unsqueeze(-1) + var.clamp_min(0).sqrt().unsqueeze(-1) * nodes
        values = self.warp.untransform(values)[0]
        m = (values * weights).sum(-1)
        return m, (((values - m.unsqueeze(-1)) ** 2) * weights).sum(-1)

    def posterior(
        self,
        X: Tensor,
        output_indices: Sequence[int] | None = None,
        observation_noise: bool | Tensor = False,
        posterior_transform: Any = None,
        **kwargs: Any,
    ) -> NetworkEnsemblePosterior:
        """The ensemble posterior at ``X`` (``batch x q x d``) on the scale of ``Y``."""
        if isinstance(observation_noise, Tensor) or output_indices not in (None, [0], (0,)):
            # the base class raises the errors of unsupported arguments
            return super().posterior(X, output_indices, observation_noise, posterior_transform)
        self.eval()
        X = self.transform_inputs(X)
        warped = super().forward(X)
        noise = super().observation_noise(X) if observation_noise else None
        if noise is None:
            values = self.warp.untransform(warped)[0]
        else:
            values, noise = self._moments(warped, noise.expand_as(warped))
        posterior = NetworkEnsemblePosterior(
            values, noise_var=noise, weights=self.ensemble_weights, noise_seed=self.noise_seed
        )
        if posterior_transform is not None:
            return posterior_transform(posterior=posterior, X=X)
        return posterior


class _Centered:
    """Feature map then ``2 x - 1``: network inputs in ``[-1, 1]``."""

    def __init__(self, feature_map: FeatureMap) -> None:
        self.feature_map = feature_map

    def __call__(self, X: Tensor) -> Tensor:
        return 2.0 * self.feature_map(X) - 1.0


def _number(
    name: str, value: Any, low: float, high: float = math.inf, integer: bool = False
) -> Any:
    """``value`` if it is a number (an integer if ``integer``) in ``[low, high]``."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        what = "an integer" if integer else "a number"
        bounds = f">= {low}" if high == math.inf else f"in [{low}, {high}]"
        raise ValueError(f"{name}: expected {what} {bounds}, got {value!r}.")
    return value if integer else float(value)


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name}: expected a positive number, got {value!r}.")
    return float(value)


class HMCBNNSurrogate(Surrogate):
    """Bayesian MLP with NUTS-sampled weights; an ``EnsemblePosterior`` of the kept draws.

    Args:
        device: Torch device (``"cpu"`` or ``"cuda"``).
        widths: Hidden layer widths.
        activation: ``"tanh"`` or ``"relu"``.
        prior_var: Weight prior variance times the layer's fan-in.
        bias_var: Bias prior variance.
        ard_scale: Prior standard deviation of the per-input log scales of the
            first layer's weights (automatic relevance determination, as in
            Neal's BNNs); ``None`` fixes them at 0.
        output_scale: Prior standard deviation of the log scale of the output
            layer's weights (the signal amplitude); ``None`` fixes it at 0.
        noise_std: Fixed noise standard deviation in standardized units;
            ``None`` learns it (LogNormal prior below).
        noise_prior_loc: Median of the LogNormal prior on the noise standard
            deviation (standardized units).
        noise_prior_scale: Standard deviation of ``log sigma`` under its prior.
        num_chains: Chains, each from its own MAP start, run one after another.
        num_warmup: NUTS warm-up (adaptation) steps per chain.
        num_samples: NUTS draws per chain after warm-up.
        thinning: Keep every ``thinning``-th draw: the posterior has
            ``num_chains x (num_samples // thinning)`` networks.
        max_tree_depth: NUTS tree depth limit (at most ``2^depth - 1``
            leapfrog steps per draw); the main cost knob.
        target_accept: Target acceptance probability of step-size adaptation.
        map_steps: Adam steps (learning rate 0.01) towards the MAP before each chain.
        max_divergent: Fraction of divergent draws above which the fit warns.
        warp: Fit the networks to Yeo-Johnson-warped outcomes
            (``surrogates.warping``), so a long tail (Branin's walls) does not
            swamp the structure near the optimum; the posterior is mapped
            back to the scale of ``Y``.
    """

    name = "hmc_bnn"
    includes_observation_noise = True
    is_ensemble = True

    def __init__(
        self,
        *,
        device: str = "cpu",
        widths: Sequence[int] = (50, 50),
        activation: str = "tanh",
        prior_var: float = 1.0,
        bias_var: float = 1.0,
        ard_scale: float | None = 1.0,
        output_scale: float | None = 1.0,
        noise_std: float | None = None,
        noise_prior_loc: float = 0.1,
        noise_prior_scale: float = 0.5,
        num_chains: int = 4,
        num_warmup: int = 50,
        num_samples: int = 25,
        thinning: int = 1,
        max_tree_depth: int = 6,
        target_accept: float = 0.8,
        map_steps: int = 500,
        max_divergent: float = 0.25,
        warp: bool = True,
    ) -> None:
        super().__init__(device=device)
        if not isinstance(widths, (list, tuple)) or any(
            isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths
        ):
            raise ValueError(f"widths: expected a sequence of positive integers, got {widths!r}.")
        self.widths = tuple(widths)
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}."
            )
        self.activation = activation
        self.prior_var = _positive("prior_var", prior_var)
        self.bias_var = _positive("bias_var", bias_var)
        self.ard_scale = None if ard_scale is None else _positive("ard_scale", ard_scale)
        self.output_scale = (
            None if output_scale is None else _positive("output_scale", output_scale)
        )
        self.noise_std = None if noise_std is None else _positive("noise_std", noise_std)
        self.noise_prior_loc = _positive("noise_prior_loc", noise_prior_loc)
        self.noise_prior_scale = _positive("noise_prior_scale", noise_prior_scale)
        self.num_chains = _number("num_chains", num_chains, 1, integer=True)
        self.num_warmup = _number("num_warmup", num_warmup, 0, integer=True)
        self.num_samples = _number("num_samples", num_samples, 1, integer=True)
        self.thinning = _number("thinning", thinning, 1, num_samples, integer=True)
        self.max_tree_depth = _number("max_tree_depth", max_tree_depth, 1, integer=True)
        self.target_accept = _number("target_accept", target_accept, 1e-3, 1 - 1e-3)
        self.map_steps = _number("map_steps", map_steps, 0, integer=True)
        self.max_divergent = _number("max_divergent", max_divergent, 0, 1)
        if not isinstance(warp, bool):
            raise ValueError(f"warp: expected True or False, got {warp!r}.")
        self.warp = warp
        #: Why the last fit was degraded (``None`` if it was not).
        self.last_fallback: str | None = None
        #: Diagnostics of the last fit: step size, divergences, tree sizes.
        self.last_diagnostics: dict[str, Any] = {}

    # ------------------------------------------------------------------ helpers

    def _prior_std(self, spec: MLPSpec) -> Tensor:
        parts = []
        for i, o in spec.layer_dims:
            parts.append(torch.full((i * o,), math.sqrt(self.prior_var / i), dtype=torch.float64))
            parts.append(torch.full((o,), math.sqrt(self.bias_var), dtype=torch.float64))
        return torch.cat(parts).to(self.device)

    def _groups(self, spec: MLPSpec) -> dict[str, Tensor]:
        """Weight groups with learned scales: first-layer rows (ARD), output weights."""
        groups, stds, k = [], [], 0
        for j, (i, o) in enumerate(spec.layer_dims):
            g = torch.full((i * o + o,), -1, dtype=torch.long)
            if j == 0 and self.ard_scale is not None:
                g[: i * o] = torch.arange(i).repeat_interleave(o) + k
                stds += [self.ard_scale] * i
                k += i
            if j == len(spec.layer_dims) - 1 and self.output_scale is not None:
                g[: i * o] = k
                stds.append(self.output_scale)
                k += 1
            groups.append(g)
        if not stds:
            return {}
        return {
            "groups": torch.cat(groups).to(self.device),
            "scale_std": torch.tensor(stds, dtype=torch.float64, device=self.device),
        }

    def _map(self, log_joint: LogJoint, z: Tensor) -> Tensor:
        """Adam steps on ``U`` from ``z``; returns the last finite state."""
        z = z.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=1e-2)
        best = z.detach().clone()
        for _ in range(self.map_steps):
            U, grad = log_joint(z.detach())
            if not (torch.isfinite(U) and torch.isfinite(grad).all()):
                break
            best = z.detach().clone()
            z.grad = grad
            opt.step()
        return best

    def _run_nuts(
        self, log_joint: LogJoint, z0: Tensor, step_size: float
    ) -> tuple[Tensor, dict[str, Any]]:
        """One chain: ``num_samples x dim`` NUTS draws from ``z0``, and diagnostics."""
        from pyro.infer import MCMC, NUTS

        fn = log_joint.compiled()
        steps = [0]

        def potential(params: dict[str, Tensor]) -> Tensor:
            steps[0] += 1
            return Potential.apply(params["z"], fn)

        kernel = NUTS(
            potential_fn=potential,
            step_size=step_size,
            adapt_step_size=True,
            adapt_mass_matrix=True,
            full_mass=False,
            target_accept_prob=self.target_accept,
            max_tree_depth=self.max_tree_depth,
        )
        mcmc = MCMC(
            kernel,
            num_samples=self.num_samples,
            warmup_steps=self.num_warmup,
            initial_params={"z": z0},
            disable_progbar=True,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pyro: "Consider using a Pyro model"
            mcmc.run()
        draws = mcmc.get_samples()["z"].reshape(self.num_samples, -1)
        diag = mcmc.diagnostics()
        divergent = diag.get("divergences", {}).get("chain 0", [])
        return draws, {
            "step_size": float(kernel.step_size),
            "divergent": len(divergent),
            "leapfrog_steps": steps[0],
        }

    # ------------------------------------------------------------------ fit

    def fit(
        self,
        X: Tensor,
        Y: Tensor,
        columns: Sequence[Column],
        seed: int,
        init: Mapping[str, Any] | None = None,
        refit: bool = True,
    ) -> SampledNetworkModel:
        """Sample the network weights by NUTS and return their ensemble model.

        Args:
            X: ``n x d`` encoded inputs.
            Y: ``n x 1`` outcomes (maximization, user scale).
            columns: ``d`` column descriptions.
            seed: Seed of the MAP start and of the chain.
            init: ``last_state`` of an earlier fit: its step size and noise
                level start this fit's adaptation.
            refit: Ignored: every fit samples afresh (``last_refit`` is True).

        Returns:
            A ``SampledNetworkModel`` over the ``num_samples // thinning`` kept draws.

        Raises:
            FitError: the chain produced no finite draw, or sampling failed.
        """
        X = X.to(device=self.device, dtype=torch.float64)
        Y = Y.to(device=self.device, dtype=torch.float64).reshape(-1, 1)
        self.last_fallback = None
        self.last_refit = True
        if X.shape[0] < 1 or not torch.isfinite(Y).all():
            raise FitError(f"hmc_bnn: expected at least one finite outcome, got Y={Y.tolist()}.")
        fmap = FeatureMap(columns)
        features = _Centered(fmap)
        spec = MLPSpec(in_dim=fmap.dim, widths=self.widths, activation=self.activation)
        floor = 1e-12 * max(float(Y.abs().max()), 1e-300)
        warp = None
        if self.warp:
            warp = YeoJohnson(min_stdv=floor).to(Y)
            Y = warp(Y)[0].detach()
            warp.eval()
        y_mean = Y.mean()
        y_std = Y.std() if Y.shape[0] > 1 else torch.zeros((), dtype=Y.dtype, device=Y.device)
        if not float(y_std) > floor:
            y_std = torch.ones_like(y_mean)
        y = ((Y - y_mean) / y_std).reshape(-1)
        log_sigma0 = math.log(self.noise_std or 0.3)
        step_size = 0.05
        if init is not None:
            step_size = _finite(init.get("step_size"), step_size)
            if self.noise_std is None:
                log_sigma0 = _finite(init.get("log_sigma"), log_sigma0)
        log_joint = LogJoint(
            spec,
            features(X),
            y,
            self._prior_std(spec),
            log_sigma=None if self.noise_std is None else math.log(self.noise_std),
            noise_loc=math.log(self.noise_prior_loc),
            noise_scale=self.noise_prior_scale,
            **self._groups(spec),
        )
        with torch.random.fork_rng(devices=[] if X.device.type == "cpu" else [X.device]):
            torch.manual_seed(seed)
            chains, infos = [], []
            for _ in range(self.num_chains):
                eps0 = torch.randn(spec.num_params, dtype=torch.float64, device=self.device)
                extra = [0.0] * log_joint.G + ([log_sigma0] if self.noise_std is None else [])
                z0 = self._map(log_joint, torch.cat([eps0, eps0.new_tensor(extra)]))
                try:
                    draws, info = self._run_nuts(log_joint, z0, step_size)
                except (RuntimeError, ValueError) as exc:
                    raise FitError(f"hmc_bnn: NUTS failed: {type(exc).__name__}: {exc}") from exc
                chains.append(draws[self.thinning - 1 :: self.thinning])
                infos.append(info)
        info = {
            "step_size": float(torch.tensor([i["step_size"] for i in infos]).log().mean().exp()),
            "divergent": sum(i["divergent"] for i in infos),
            "leapfrog_steps": sum(i["leapfrog_steps"] for i in infos),
        }
        kept = torch.cat(chains)
        finite = torch.isfinite(kept).all(-1)
        if not bool(finite.any()):
            raise FitError("hmc_bnn: NUTS produced no finite draw.")
        problems = []
        if not bool(finite.all()):
            problems.append(f"dropped {int((~finite).sum())} non-finite draws of {len(kept)}")
            kept = kept[finite]
        total = self.num_chains * self.num_samples
        if info["divergent"] > self.max_divergent * total:
            problems.append(f"{info['divergent']} of {total} NUTS draws diverged")
        if problems:
            self.last_fallback = "; ".join(problems)
            warnings.warn(f"hmc_bnn: {self.last_fallback}", RuntimeWarning, stacklevel=2)
        log_sigma = log_joint.log_sigma(kept)
        self.last_diagnostics = {**info, "kept": len(kept), "sigma": float(log_sigma.exp().mean())}
        logger.info("hmc_bnn fit: %s", self.last_diagnostics)
        self.last_state = {
            "step_size": info["step_size"],
            "log_sigma": float(log_sigma.mean()),
        }
        model = SampledNetworkModel if warp is None else WarpedNetworkModel
        extra = {} if warp is None else {"warp": warp}
        return model(
            spec,
            log_joint.theta(kept),
            feature_map=features,
            y_mean=y_mean,
            y_std=y_std,
            noise_var=torch.exp(2.0 * log_sigma),
            noise_seed=seed,
            **extra,
        ).eval()

    def __repr__(self) -> str:
        return (
            f"HMCBNNSurrogate(widths={self.widths!r}, num_warmup={self.num_warmup}, "
            f"num_samples={self.num_samples}, thinning={self.thinning}, "
            f"max_tree_depth={self.max_tree_depth}, device={self.device!r})"
        )


def _finite(value: Any, default: float) -> float:
    """``value`` as a float when it is a finite number, else ``default``."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return value if math.isfinite(value) else default
