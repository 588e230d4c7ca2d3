"""Shared neural-network layer: batched functional MLPs and their botorch model.

Sample-based neural surrogates (``ensemble``: independently trained networks;
``hmc_bnn``: posterior samples of the weights) both end in ``S`` weight sets of
one architecture. This module evaluates all ``S`` in one pass and wraps them
as a botorch ``EnsembleModel``.

* ``MLPSpec`` describes the architecture (input width, hidden widths, tanh or
  relu, output width). The weights of ``S`` networks are one ``S x P`` tensor
  ``theta`` (``P = spec.num_params``, layers packed as ``W`` (``in x out``,
  row-major) then ``b``, layer after layer). ``spec.forward(theta, X)`` maps
  ``batch x n x d`` inputs to ``batch x S x n x out`` with one batched matmul
  per layer, so training an ensemble, or evaluating ``S`` posterior samples
  inside an acquisition, costs one forward pass.
* ``SampledNetworkModel(spec, theta, ...)`` is the botorch model:
  ``forward(X) -> batch x S x q x 1`` on the scale of ``Y``, inputs mapped by a
  ``FeatureMap`` (one-hot categoricals), outputs un-standardized with
  ``y_mean``/``y_std``. ``posterior(X)`` is a ``NetworkEnsemblePosterior`` (an
  ``EnsemblePosterior``): the mean over members and their spread.
  ``posterior(X, observation_noise=True)`` adds each member's Gaussian
  observation noise: a per-member scalar ``noise_var`` (``S``, standardized
  units) and/or, with ``spec.out_dim == 2``, a per-point variance head
  (``softplus`` of the second output). Its ``variance`` is then the mixture
  variance (member spread + mean noise) and ``rsample`` adds noise drawn from
  a fixed seed (``noise_seed``), so acquisitions stay deterministic.
* Acquisitions: ``get_sampler`` gives this posterior a ``StratifiedIndexSampler``
  (an ``IndexSampler`` whose draws cycle through the members, the same for
  every t-batch), so a Monte Carlo acquisition with ``N`` samples averages the
  members exactly when ``S`` divides ``N`` and compares t-batches with common
  members. ``cache_root`` does not apply (not a GPyTorch model; botorch's
  ``supports_cache_root`` says so). ``prune_baseline`` works.

How ``hmc_bnn`` uses it::

    spec = MLPSpec(in_dim=fmap.dim, widths=(50, 50), activation="tanh")
    # a Pyro model draws theta (P,) from a prior (spec.fan_in_scale() helps),
    # mean = spec.forward(theta, fmap(X))[..., 0]; Y_std ~ N(mean, sigma2)
    samples = mcmc.get_samples()  # theta: S x P, sigma2: S
    model = SampledNetworkModel(spec, samples["theta"], feature_map=fmap,
                                y_mean=mu, y_std=sd, noise_var=samples["sigma2"])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from botorch.exceptions.errors import UnsupportedError
from botorch.models.ensemble import EnsembleModel
from botorch.posteriors.ensemble import EnsemblePosterior
from botorch.sampling.get_sampler import GetSampler
from botorch.sampling.index_sampler import IndexSampler
from torch import Tensor

from surrogates.features import FeatureMap

__all__ = [
    "MLPSpec",
    "NetworkEnsemblePosterior",
    "SampledNetworkModel",
    "StratifiedIndexSampler",
]

_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}
#: Floor of the variance head (standardized units), so a head never predicts zero noise.
MIN_HEAD_VAR = 1e-6


@dataclass(frozen=True)
class MLPSpec:
    """A fully connected network ``in_dim -> widths... -> out_dim``.

    Attributes:
        in_dim: Number of input features.
        widths: Hidden layer widths (may be empty: a linear model).
        activation: ``"tanh"`` or ``"relu"``.
        out_dim: Number of outputs (1: the mean; 2: mean and a raw variance).
    """

    in_dim: int
    widths: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    out_dim: int = 1

    def __post_init__(self) -> None:
        if int(self.in_dim) < 1:
            raise ValueError(f"in_dim: expected a positive integer, got {self.in_dim!r}.")
        widths = tuple(self.widths)
        if any(int(w) < 1 for w in widths):
            raise ValueError(f"widths: expected positive integers, got {self.widths!r}.")
        object.__setattr__(self, "widths", tuple(int(w) for w in widths))
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation: expected one of {sorted(_ACTIVATIONS)}, got {self.activation!r}."
            )
        if int(self.out_dim) not in (1, 2):
            raise ValueError(f"out_dim: expected 1 or 2, got {self.out_dim!r}.")

    @property
    def layer_dims(self) -> list[tuple[int, int]]:
        """``(fan_in, fan_out)`` of each layer."""
        dims = [self.in_dim, *self.widths, self.out_dim]
        return list(zip(dims[:-1], dims[1:]))

    @property
    def num_params(self) -> int:
        """Number of weights and biases ``P``."""
        return sum(i * o + o for i, o in self.layer_dims)

    def unflatten(self, theta: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Split ``S x P`` (or ``P``) weights into ``(W: S x in x out, b: S x 1 x out)`` layers."""
        if theta.shape[-1] != self.num_params:
            raise ValueError(
                f"theta: expected last dimension {self.num_params} (parameters of {self}), "
                f"got shape {tuple(theta.shape)}."
            )
        lead = theta.shape[:-1]
        layers, k = [], 0
        for i, o in self.layer_dims:
            W = theta[..., k : k + i * o].reshape(*lead, i, o)
            k += i * o
            b = theta[..., k : k + o].reshape(*lead, 1, o)
            k += o
            layers.append((W, b))
        return layers

    def forward(self, theta: Tensor, X: Tensor) -> Tensor:
        """Evaluate ``S`` networks on shared inputs in one pass.

        Args:
            theta: ``S x P`` weight sets (or ``P`` for a single network).
            X: ``batch x n x in_dim`` (or ``n x in_dim``) features.

        Returns:
            ``batch x S x n x out_dim`` outputs (``batch x n x out_dim`` for a ``P`` theta).
        """
        act = _ACTIVATIONS[self.activation]
        h = X.unsqueeze(-3) if theta.dim() > 1 else X
        layers = self.unflatten(theta)
        for j, (W, b) in enumerate(layers):
            h = torch.matmul(h, W) + b
            if j < len(layers) - 1:
                h = act(h)
        return h

    def absorb_input_affine(self, theta: Tensor, scale: float, shift: float) -> Tensor:
        """Weights of the same networks applied to ``x`` instead of ``scale * x + shift``.

        Networks trained on rescaled inputs (e.g. ``2 x - 1``, centered) become
        networks of the raw features: ``W1' = scale W1``, ``b1' = b1 + shift sum_in W1``.

        Args:
            theta: ``S x P`` (or ``P``) weights trained on ``scale * x + shift``.
            scale: Input scale.
            shift: Input shift.

        Returns:
            New ``S x P`` (or ``P``) weights with the affine folded into the first layer.
        """
        i, o = self.layer_dims[0]
        out = theta.clone()
        W = theta[..., : i * o].reshape(*theta.shape[:-1], i, o)
        out[..., : i * o] = (scale * W).reshape(*theta.shape[:-1], i * o)
        out[..., i * o : i * o + o] = theta[..., i * o : i * o + o] + shift * W.sum(-2)
        return out

    def fan_in_scale(self, dtype: torch.dtype = torch.float64, device: Any = None) -> Tensor:
        """``P`` scales: ``1 / sqrt(fan_in)`` for weights, 1 for biases (prior/init scale)."""
        parts = []
        for i, o in self.layer_dims:
            parts.append(torch.full((i * o,), 1.0 / math.sqrt(i), dtype=dtype, device=device))
            parts.append(torch.ones(o, dtype=dtype, device=device))
        return torch.cat(parts)

    def init(
        self,
        S: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
        device: Any = None,
        bias_scale: float = 0.1,
    ) -> Tensor:
        """``S x P`` independent initial weights (Glorot normal weights, small normal biases).

        Args:
            S: Number of networks.
            generator: Torch generator (on ``device``) for reproducible draws.
            dtype: Weight dtype.
            device: Weight device.
            bias_scale: Standard deviation of the initial biases.
        """
        theta = torch.randn(S, self.num_params, generator=generator, dtype=dtype, device=device)
        parts = []
        for i, o in self.layer_dims:
            parts.append(torch.full((i * o,), math.sqrt(2.0 / (i + o)), dtype=dtype))
            parts.append(torch.full((o,), bias_scale, dtype=dtype))
        return theta * torch.cat(parts).to(device)


def head_variance(raw: Tensor) -> Tensor:
    """Variance (standardized units) from the raw second output of a variance head."""
    return torch.nn.functional.softplus(raw) + MIN_HEAD_VAR


class NetworkEnsemblePosterior(EnsemblePosterior):
    """An ``EnsemblePosterior`` whose members may carry Gaussian observation noise.

    Without ``noise_var`` it is botorch's ``EnsemblePosterior``. With it, the
    ``variance`` is the mixture variance (spread of the member means plus the
    mean noise variance) and samples add member noise drawn from ``noise_seed``
    (fixed, so repeated evaluations are deterministic).

    Args:
        values: ``batch x S x q x 1`` member means.
        noise_var: ``batch x S x q x 1`` (or broadcastable) member noise variances, or None.
        weights: Optional ``S`` member weights.
        noise_seed: Seed of the noise added by ``rsample``.
    """

    def __init__(
        self,
        values: Tensor,
        noise_var: Tensor | None = None,
        weights: Tensor | None = None,
        noise_seed: int = 0,
    ) -> None:
        super().__init__(values=values, weights=weights)
        self.noise_var = None if noise_var is None else noise_var.expand_as(values)
        self.noise_seed = int(noise_seed)

    @property
    def variance(self) -> Tensor:
        """``batch x q x 1`` member spread plus (with noise) the mean noise variance."""
        var = super().variance
        if self.noise_var is not None:
            var = var + (self.noise_var * self.weights[..., None, None]).sum(dim=-3)
        return var

    def rsample_from_base_samples(self, sample_shape: torch.Size, base_samples: Tensor) -> Tensor:
        """Member values at the index ``base_samples`` (plus seeded noise with ``noise_var``)."""
        samples = super().rsample_from_base_samples(sample_shape, base_samples)
        if self.noise_var is None:
            return samples
        var = EnsemblePosterior(self.noise_var).rsample_from_base_samples(
            sample_shape, base_samples
        )
        gen = torch.Generator(device=self.device).manual_seed(self.noise_seed)
        eps = torch.randn(samples.shape, generator=gen, dtype=self.dtype, device=self.device)
        return samples + var.sqrt() * eps


class StratifiedIndexSampler(IndexSampler):
    """An ``IndexSampler`` whose indices cycle through the ensemble members.

    Sample ``j`` uses member ``j mod S`` in every t-batch (evenly spaced
    members when ``N < S``), so ``N`` samples average the members exactly when
    ``S`` divides ``N`` and all t-batches share members (common random
    numbers). Weighted posteriors fall back to the multinomial draws of
    ``IndexSampler``.
    """

    def _construct_base_samples(self, posterior: EnsemblePosterior) -> None:
        if posterior._weights is not None:
            return super()._construct_base_samples(posterior)
        shape = self.sample_shape + posterior.batch_shape
        if self.base_samples is not None and self.base_samples.shape == shape:
            return None
        N, S = self.sample_shape.numel(), posterior.ensemble_size
        if N >= S:
            idx = torch.arange(N, device=posterior.device) % S
        else:
            idx = torch.linspace(0, S - 1, N, device=posterior.device).round().long()
        idx = idx.reshape(self.sample_shape + (1,) * len(posterior.batch_shape))
        self.register_buffer("base_samples", idx.expand(shape).contiguous())
        return None


@GetSampler.register(NetworkEnsemblePosterior)
def _get_sampler_network_ensemble(
    posterior: NetworkEnsemblePosterior, sample_shape: torch.Size, seed: int | None = None
) -> StratifiedIndexSampler:
    return StratifiedIndexSampler(sample_shape=sample_shape, seed=seed)


class SampledNetworkModel(EnsembleModel):
    """``S`` networks of one architecture as a botorch ``EnsembleModel`` (one output).

    Args:
        spec: The architecture; ``spec.in_dim`` must equal the feature width.
        theta: ``S x P`` weights (networks trained on standardized outcomes).
        feature_map: Maps encoded ``batch x q x d`` inputs to features
            (``None``: identity).
        y_mean: Mean used to standardize ``Y``.
        y_std: Standard deviation used to standardize ``Y``.
        noise_var: Per-member Gaussian noise variance in standardized units
            (``S`` or a scalar), or None. Added to a variance head if both exist.
        weights: Optional ``S`` member weights (uniform by default).
        noise_seed: Seed of the noise in samples with ``observation_noise=True``.
    """

    def __init__(
        self,
        spec: MLPSpec,
        theta: Tensor,
        feature_map: FeatureMap | None = None,
        y_mean: float | Tensor = 0.0,
        y_std: float | Tensor = 1.0,
        noise_var: float | Tensor | None = None,
        weights: Tensor | None = None,
        noise_seed: int = 0,
    ) -> None:
        super().__init__(weights=weights)
        theta = theta.detach()
        if theta.dim() != 2:
            raise ValueError(f"theta: expected S x P weights, got shape {tuple(theta.shape)}.")
        spec.unflatten(theta)  # validates P
        self.spec = spec
        self.feature_map = feature_map
        self._num_outputs = 1
        self.noise_seed = int(noise_seed)
        self.register_buffer("theta", theta)
        opts = {"dtype": theta.dtype, "device": theta.device}
        self.register_buffer("y_mean", torch.as_tensor(y_mean, **opts).reshape(()))
        self.register_buffer("y_std", torch.as_tensor(y_std, **opts).reshape(()))
        if noise_var is not None:
            nv = torch.as_tensor(noise_var, **opts).detach()
            nv = nv.expand(theta.shape[0]) if nv.dim() == 0 else nv.reshape(-1)
            if nv.shape[0] != theta.shape[0] or not bool((nv >= 0).all()):
                raise ValueError(
                    f"noise_var: expected {theta.shape[0]} non-negative variances, "
                    f"got {tuple(nv.shape)}."
                )
            noise_var = nv.clone()
        self.register_buffer("noise_var", noise_var)

    @property
    def num_members(self) -> int:
        """Number of networks ``S``."""
        return int(self.theta.shape[0])

    @property
    def batch_shape(self) -> torch.Size:
        """The model has no batch dimensions of its own."""
        return torch.Size()

    def _standardized(self, X: Tensor) -> tuple[Tensor, Tensor | None]:
        """Member means and head variances (standardized), each ``batch x S x q x 1``."""
        feats = self.feature_map(X) if self.feature_map is not None else X
        out = self.spec.forward(self.theta, feats)
        head = head_variance(out[..., 1:2]) if self.spec.out_dim == 2 else None
        return out[..., :1], head

    def forward(self, X: Tensor) -> Tensor:
        """Member predictions on the scale of ``Y``.

        Args:
            X: ``batch x q x d`` encoded inputs.

        Returns:
            ``batch x S x q x 1`` member means.
        """
        return self._standardized(X)[0] * self.y_std + self.y_mean

    def observation_noise(self, X: Tensor) -> Tensor | None:
        """Member noise variances on the scale of ``Y`` (``batch x S x q x 1``), or None."""
        return self._noise(X, self._standardized(X)[1])

    def _noise(self, X: Tensor, head: Tensor | None) -> Tensor | None:
        var = head
        if self.noise_var is not None:
            member = self.noise_var.reshape(-1, 1, 1)
            var = member if var is None else var + member
        return None if var is None else var * self.y_std**2

    def posterior(
        self,
        X: Tensor,
        output_indices: Sequence[int] | None = None,
        observation_noise: bool | Tensor = False,
        posterior_transform: Any = None,
        **kwargs: Any,
    ) -> NetworkEnsemblePosterior:
        """The ensemble posterior at ``X``.

        Args:
            X: ``batch x q x d`` (or ``q x d``) encoded inputs.
            output_indices: Must be None or ``[0]`` (one output).
            observation_noise: ``True`` adds the members' observation noise
                (variance and samples); a tensor of noise levels is unsupported.
            posterior_transform: Optional botorch ``PosteriorTransform``.
            **kwargs: Ignored (botorch passes model-specific options).

        Returns:
            A ``NetworkEnsemblePosterior`` over ``batch x S x q x 1`` member values.
        """
        if isinstance(observation_noise, Tensor):
            raise UnsupportedError(
                "SampledNetworkModel: observation_noise must be a bool, got a tensor."
            )
        if output_indices is not None and list(output_indices) != [0]:
            raise UnsupportedError(
                f"SampledNetworkModel has one output; got output_indices={output_indices!r}."
            )
        self.eval()
        X = self.transform_inputs(X)
        mean, head = self._standardized(X)
        values = mean * self.y_std + self.y_mean
        noise = self._noise(X, head) if observation_noise else None
        posterior = NetworkEnsemblePosterior(
            values, noise_var=noise, weights=self.ensemble_weights, noise_seed=self.noise_seed
        )
        if posterior_transform is not None:
            return posterior_transform(posterior=posterior, X=X)
        return posterior
