"""Exact Gaussian process surrogate (the default).

Continuous and ordinal columns use botorch's ``SingleTaskGP`` defaults: an RBF
kernel with the dimension-scaled log-normal lengthscale prior (Hvarfner et al.,
2024) and a Gaussian noise. By default two GPs are fitted, one with learned
noise and one noise-free (interpolating), and the noise-free one is used when
its closed-form leave-one-out predictive density is clearly better (by
``NOISE_FREE_MARGIN`` standard errors): deterministic objectives
get an interpolating model without being declared deterministic, noisy ones
keep their noise. Categorical columns switch to
``MixedSingleTaskGP`` (a Hamming-distance categorical kernel combined with the
continuous kernel by sum and product). Outcomes are standardized inside the
model, so the posterior is on the scale of ``Y``.

Text columns (``Column(kind="text")``) enter through the principal coordinates
of their candidates' embeddings (``surrogates.features.text_features``,
``text_dim`` of them per column), under the same kernel as the numeric
columns (and the categorical kernel when categoricals are present too).

Fitting never crashes a run: a failed fit is retried with more Cholesky
jitter, then the last good hyperparameters are reused, and only then
``FitError`` is raised so the optimizer can fall back to a space-filling point.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from botorch.exceptions import ModelFittingError
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.settings import cholesky_jitter
from linear_operator.utils.errors import NanError, NotPSDError
from torch import Tensor

from surrogates.base import Column, FitError, Surrogate
from surrogates.exact_gp import FastMixedSingleTaskGP, FastSingleTaskGP, fast_mll_loss

__all__ = ["GPSurrogate"]

logger = logging.getLogger(__name__)


def _matern(batch_shape: torch.Size, ard_num_dims: int, active_dims: Any = None) -> Any:
    """Matern-5/2 with the Gamma(3, 6) lengthscale prior of earlier botorch versions."""
    from gpytorch.kernels import MaternKernel
    from gpytorch.priors import GammaPrior

    return MaternKernel(
        nu=2.5,
        ard_num_dims=ard_num_dims,
        batch_shape=batch_shape,
        active_dims=active_dims,
        lengthscale_prior=GammaPrior(3.0, 6.0),
    )


#: kernel name -> factory(d, active_dims, batch_shape), or None for botorch's default
_KERNELS: dict[str, Any] = {"rbf": None, "matern": _matern}


def _likelihood(min_noise: float, fixed: bool = False) -> Any:
    """The LogNormal(-4, 1) noise prior of botorch, with a lower floor than its 1e-4.

    The noise variance is in standardized units: botorch's floor of 1e-4 is a
    noise standard deviation of 1% of the outcomes' spread, which blurs the
    last digits of deterministic objectives with a wide range (Branin's
    values span 0.4 to 300). ``fixed`` pins the noise at the floor (the raw
    parameter is the noise itself, so learned and fixed states are interchangeable).
    """
    from gpytorch.constraints import GreaterThan
    from gpytorch.likelihoods import GaussianLikelihood
    from gpytorch.priors import LogNormalPrior

    prior = LogNormalPrior(loc=-4.0, scale=1.0)
    likelihood = GaussianLikelihood(
        noise_prior=prior,
        noise_constraint=GreaterThan(min_noise, transform=None, initial_value=prior.mode),
    )
    if fixed:
        raw = likelihood.noise_covar.raw_noise
        with torch.no_grad():
            raw.fill_(min_noise)
        raw.requires_grad_(False)
    return likelihood


def loo_log_densities(model: SingleTaskGP) -> Tensor | None:
    """Leave-one-out log predictive density of each of a GP's training targets.

    The closed form of Rasmussen & Williams (2006, eq. 5.10-5.12), in the
    model's standardized units: ``mu_i = y_i - [K^-1 r]_i / [K^-1]_ii`` and
    ``var_i = 1 / [K^-1]_ii`` with ``K`` the prior covariance plus noise.

    Returns:
        ``n`` log densities, or ``None`` when ``K`` is not numerically PD or a
        density is not finite.
    """
    X = model.train_inputs[0]
    y = model.train_targets
    model.train()
    try:
        with torch.no_grad():
            prior = model.likelihood(model.forward(X))
            K = prior.covariance_matrix
            L, info = torch.linalg.cholesky_ex(K)
            if int(info.max()) > 0:
                return None
            Kinv = torch.cholesky_inverse(L)
            alpha = Kinv @ (y - prior.mean).unsqueeze(-1)
            var = 1.0 / torch.diagonal(Kinv, dim1=-2, dim2=-1)
            resid = alpha.squeeze(-1) * var
            lpd = -0.5 * (torch.log(2 * torch.pi * var) + resid**2 / var)
    finally:
        model.eval()
    return lpd if bool(torch.isfinite(lpd).all()) else None


def loo_log_density(model: SingleTaskGP) -> float:
    """Mean leave-one-out log predictive density (``-inf`` where it is undefined)."""
    lpd = loo_log_densities(model)
    return float("-inf") if lpd is None else float(lpd.mean())


#: LogNormal(loc, scale) prior on the lengthscales of the categorical (Hamming)
#: kernels: median 1, i.e. points differing in one of ``m`` categorical columns
#: correlate ``exp(-1/m)``. botorch's ``MixedSingleTaskGP`` has none, and on
#: NAS-Bench-201 (6 categoricals) maximum likelihood drove 4 of 6 lengthscales to
#: 0.004: every architecture uncorrelated with the others, the search random.
#: Its known cost: a column whose levels differ tenfold in the objective
#: (``hpo_lasso_diabetes``'s ``fit_intercept``) stays correlated across them,
#: and that task's regret got worse (docs/results.md).
CATEGORICAL_LENGTHSCALE_PRIOR = (0.0, 1.0)


def _with_categorical_prior(model: SingleTaskGP) -> SingleTaskGP:
    """Register ``CATEGORICAL_LENGTHSCALE_PRIOR`` on every categorical kernel of ``model``."""
    from botorch.models.kernels.categorical import CategoricalKernel
    from gpytorch.priors import LogNormalPrior

    loc, scale = CATEGORICAL_LENGTHSCALE_PRIOR
    for module in model.covar_module.modules():
        if isinstance(module, CategoricalKernel) and not hasattr(module, "lengthscale_prior"):
            module.register_prior(
                "lengthscale_prior",
                LogNormalPrior(loc, scale),
                lambda m: m.lengthscale,
                lambda m, v: m._set_lengthscale(v),
            )
    return model


class _TextGP(FastSingleTaskGP):
    """An exact GP (fast prediction) whose kernel maps Text codes to embedding coordinates.

    The encoded inputs (codes ``0 .. m-1`` in Text columns) are not in the unit
    cube by design, so botorch's input-scaling check is skipped for them.
    """

    def __init__(self, train_X: Tensor, train_Y: Tensor, **kwargs: Any) -> None:
        feature_map = kwargs["covar_module"].feature_map
        self._ignore_X_dims_scaling_check = [
            i for i, c in enumerate(feature_map.columns) if c.kind in ("categorical", "text")
        ]
        super().__init__(train_X, train_Y, **kwargs)


def _text_covar(columns: Sequence[Column], factory: Any, text_dim: int | None) -> Any:
    """The kernel of a space with Text columns, on ``FeatureMap(onehot=False)`` features.

    Without categoricals: the continuous kernel (botorch's default RBF with
    the dimension-scaled lengthscale prior, or ``factory``'s kernel with an
    outputscale) on every feature. With categoricals: botorch's
    ``MixedSingleTaskGP`` structure, ``S(k_c + S(k_cat)) + S(k_c * k_cat)``.
    """
    from botorch.models.kernels.categorical import CategoricalKernel
    from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
    from gpytorch.constraints import GreaterThan
    from gpytorch.kernels import ScaleKernel
    from gpytorch.priors import GammaPrior

    from surrogates.features import FeatureMap, MappedKernel

    fmap = FeatureMap(columns, onehot=False, text_dim=text_dim)
    cats = fmap.code_features
    ords = [j for j in range(fmap.dim) if j not in cats]
    active = ords if cats else None

    def cont() -> Any:
        if factory is None:
            return get_covar_module_with_dim_scaled_prior(
                ard_num_dims=len(ords), active_dims=active
            )
        base = factory(batch_shape=torch.Size(), ard_num_dims=len(ords), active_dims=active)
        return ScaleKernel(base, outputscale_prior=GammaPrior(2.0, 0.15))

    def cat() -> Any:
        return CategoricalKernel(
            ard_num_dims=len(cats), active_dims=cats, lengthscale_constraint=GreaterThan(1e-6)
        )

    if not cats:
        return MappedKernel(cont(), fmap)
    base = ScaleKernel(cont() + ScaleKernel(cat())) + ScaleKernel(cont() * cat())
    return MappedKernel(base, fmap)


_FIT_ERRORS = (ModelFittingError, NotPSDError, NanError, RuntimeError, ValueError)


#: The noise-free GP is chosen when its mean leave-one-out log density beats the
#: learned-noise GP's by more than this many standard errors of the per-point
#: differences. On data that are mostly noise both models predict left-out points
#: about equally badly (the noise-free one by interpolating the noise with tiny
#: lengthscales); a bare comparison then picked it half of the time.
NOISE_FREE_MARGIN = 1.0


class GPSurrogate(Surrogate):
    """Exact GP with botorch's default priors; categorical-aware.

    Args:
        device: Torch device (``"cpu"`` or ``"cuda"``).
        retry_jitter: Cholesky jitter (float64) of the retry after a failed fit.
        max_attempts: Restarts (hyperparameters resampled from the priors)
            inside one fit attempt.
        kernel: ``"rbf"`` (botorch's default, dimension-scaled lengthscale
            prior) or ``"matern"`` (Matern-5/2 with Gamma priors).
        min_noise: Floor of the noise variance, in standardized units.
        deterministic: ``True``: the objective has no observation noise; the
            noise variance is fixed at ``min_noise`` instead of learned, so the
            GP interpolates (as Optuna's ``deterministic_objective=True``).
            ``False``: the noise is learned. ``"auto"``: both are fitted and
            the one with the better leave-one-out predictive density is used
            (the default: on Branin it cut the median regret at 30 evaluations
            from 5e-3 to 5e-4, see README).
        warp: Fit the GP to Yeo-Johnson-warped outcomes (``surrogates.warping``);
            the posterior stays on the scale of ``Y``.
        text_dim: Principal embedding coordinates per Text column
            (``surrogates.features.TEXT_DIM`` by default; ``None``: all).
    """

    name = "gp"
    includes_observation_noise = True

    def __init__(
        self,
        *,
        device: str = "cpu",
        retry_jitter: float = 1e-4,
        max_attempts: int = 5,
        kernel: str = "rbf",
        min_noise: float = 1e-6,
        deterministic: bool | str = "auto",
        warp: bool = False,
        text_dim: int | None = 16,
    ) -> None:
        super().__init__(device=device)
        if text_dim is not None and (
            isinstance(text_dim, bool) or not isinstance(text_dim, int) or text_dim < 1
        ):
            raise ValueError(f"text_dim: expected a positive integer or None, got {text_dim!r}.")
        self.text_dim = text_dim
        if kernel not in _KERNELS:
            raise ValueError(f"kernel: expected one of {sorted(_KERNELS)}, got {kernel!r}.")
        self.kernel = kernel
        if not (isinstance(min_noise, (int, float)) and min_noise > 0):
            raise ValueError(f"min_noise: expected a positive number, got {min_noise!r}.")
        self.min_noise = float(min_noise)
        if deterministic not in (True, False, "auto"):
            raise ValueError(
                f"deterministic: expected True, False or 'auto', got {deterministic!r}."
            )
        self.deterministic = deterministic
        self.warp = bool(warp)
        self.retry_jitter = retry_jitter
        self.max_attempts = max_attempts
        #: Why the last fit needed a fallback (``None`` if it did not).
        self.last_fallback: str | None = None

    def _build(
        self, X: Tensor, Y: Tensor, columns: Sequence[Column], fixed_noise: bool | None = None
    ) -> SingleTaskGP:
        cat_dims = [i for i, c in enumerate(columns) if c.kind == "categorical"]
        # Standardize with a scale-relative floor, so outcomes that vary by 1e-9 are
        # still standardized while truly constant outcomes keep unit scale.
        floor = max(1e-12 * float(Y.abs().max()), 1e-300)
        transform = Standardize(m=1, min_stdv=floor)
        if self.warp:
            from botorch.models.transforms.outcome import ChainedOutcomeTransform

            from surrogates.warping import YeoJohnson

            transform = ChainedOutcomeTransform(warp=YeoJohnson(min_stdv=floor), scale=transform)
        factory = _KERNELS[self.kernel]
        if fixed_noise is None:
            fixed_noise = self.deterministic is True
        likelihood = _likelihood(self.min_noise, fixed_noise)
        if any(c.kind == "text" for c in columns):
            return _TextGP(
                X,
                Y,
                outcome_transform=transform,
                covar_module=_text_covar(columns, factory, self.text_dim),
                likelihood=likelihood,
            )
        if cat_dims:
            return _with_categorical_prior(
                FastMixedSingleTaskGP(
                    X,
                    Y,
                    cat_dims=cat_dims,
                    outcome_transform=transform,
                    cont_kernel_factory=factory,
                    likelihood=likelihood,
                )
            )
        covar = None
        if factory is not None:
            from gpytorch.kernels import ScaleKernel
            from gpytorch.priors import GammaPrior

            base = factory(batch_shape=torch.Size(), ard_num_dims=X.shape[-1])
            covar = ScaleKernel(base, outputscale_prior=GammaPrior(2.0, 0.15))
        return FastSingleTaskGP(
            X,
            Y,
            outcome_transform=transform,
            covar_module=covar,
            likelihood=likelihood,
        )

    def _fit_once(self, model: SingleTaskGP) -> None:
        from botorch.optim.closures import ForwardBackwardClosure
        from botorch.optim.utils import get_parameters

        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        loss = fast_mll_loss(model)  # the same loss on plain tensors, where it applies
        closure = None
        if loss is not None:
            closure = ForwardBackwardClosure(loss, get_parameters(mll, requires_grad=True))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_gpytorch_mll(
                mll,
                closure=closure,
                optimizer_kwargs={"options": {"maxiter": 200}},
                max_attempts=self.max_attempts,
            )

    @staticmethod
    def _state(model: SingleTaskGP) -> dict[str, list]:
        """The fitted hyperparameters (raw parameters) as JSON-able lists."""
        return {k: v.detach().cpu().tolist() for k, v in model.named_parameters()}

    @staticmethod
    def _load_state(model: SingleTaskGP, state: Mapping[str, Any]) -> bool:
        """Copy the matching entries of ``state`` into ``model``; whether any matched."""
        matched = False
        with torch.no_grad():
            for k, p in model.named_parameters():
                if k in state and p.requires_grad:
                    value = torch.as_tensor(state[k], dtype=p.dtype, device=p.device)
                    if value.shape == p.shape and torch.isfinite(value).all():
                        p.copy_(value)
                        matched = True
        return matched

    def fit(
        self,
        X: Tensor,
        Y: Tensor,
        columns: Sequence[Column],
        seed: int,
        init: Mapping[str, Any] | None = None,
        refit: bool = True,
    ) -> SingleTaskGP:
        """Fit the GP by maximizing the marginal likelihood (with fallbacks).

        Args:
            X: ``n x d`` encoded inputs.
            Y: ``n x 1`` outcomes (maximization, user scale).
            columns: ``d`` column descriptions.
            seed: Seed for restarts from the priors.
            init: Hyperparameters of an earlier fit (``last_state``) to start
                from; they are also what a failed fit falls back to.
            refit: ``False`` reuses ``init`` without optimizing (the GP only
                conditions on ``X``, ``Y``), unless that model is not finite.

        Returns:
            A fitted ``SingleTaskGP`` / ``MixedSingleTaskGP`` in eval mode.

        Raises:
            FitError: every attempt failed and no earlier fit can be reused.
        """
        X = X.to(device=self.device, dtype=torch.float64)
        Y = Y.to(device=self.device, dtype=torch.float64)
        self.last_fallback = None
        self.last_refit = True
        if init is not None and not refit:
            model = self._build(X, Y, columns)
            try:
                if self._load_state(model, init):
                    self._check_finite(model, X)
                    self.last_state = dict(init)
                    self.last_refit = False
                    return model.eval()
            except _FIT_ERRORS:
                pass  # refit below
        fallback_state = init if init is not None else self.last_state
        errors: list[str] = []
        for jitter in (None, self.retry_jitter):
            torch.manual_seed(seed)
            model = self._build(X, Y, columns)
            if init is not None and jitter is None:
                self._load_state(model, init)
            try:
                if jitter is None:
                    self._fit_once(model)
                else:
                    with cholesky_jitter(float_value=jitter, double_value=jitter):
                        self._fit_once(model)
                self._check_finite(model, X)
            except _FIT_ERRORS as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            if jitter is not None:
                self.last_fallback = f"fit retried with jitter {jitter:g} after {errors[0]}"
            if self.deterministic == "auto":
                model = self._select_noise(model, X, Y, columns, seed)
            self.last_state = self._state(model)
            return model.eval()
        return self._reuse(X, Y, columns, fallback_state, errors)

    def _select_noise(
        self, learned: SingleTaskGP, X: Tensor, Y: Tensor, columns: Sequence[Column], seed: int
    ) -> SingleTaskGP:
        """The learned-noise or the noise-free GP, whichever predicts left-out points better.

        The noise-free GP starts from the learned one's hyperparameters and is
        kept only when its leave-one-out density is higher by more than
        ``NOISE_FREE_MARGIN`` standard errors. Its fit failing keeps the learned GP.
        """
        torch.manual_seed(seed)
        fixed = self._build(X, Y, columns, fixed_noise=True)
        self._load_state(fixed, self._state(learned))
        try:
            self._fit_once(fixed)
            self._check_finite(fixed, X)
        except _FIT_ERRORS:
            return learned
        lpd_fixed, lpd_learned = loo_log_densities(fixed), loo_log_densities(learned)
        if lpd_fixed is None:
            return learned
        if lpd_learned is None:
            return fixed
        diff = lpd_fixed - lpd_learned
        margin = NOISE_FREE_MARGIN * float(diff.std()) / len(diff) ** 0.5 if len(diff) > 1 else 0.0
        return fixed if float(diff.mean()) > margin else learned

    def _check_finite(self, model: SingleTaskGP, X: Tensor) -> None:
        model.eval()
        with torch.no_grad():
            post = model.posterior(X[:1])
            if not (torch.isfinite(post.mean).all() and torch.isfinite(post.variance).all()):
                raise ModelFittingError("the fitted model predicts non-finite values")

    def _reuse(
        self,
        X: Tensor,
        Y: Tensor,
        columns: Sequence[Column],
        state: Mapping[str, Any] | None,
        errors: list[str],
    ) -> SingleTaskGP:
        reason = "; ".join(errors)
        if state is not None:
            model = self._build(X, Y, columns)
            try:
                if not self._load_state(model, state):
                    raise ValueError("no hyperparameter matches this model")
                self._check_finite(model, X)
            except _FIT_ERRORS as exc:
                reason += f"; reusing the last good hyperparameters failed: {exc}"
            else:
                self.last_fallback = f"fit failed ({reason}); reused the last good hyperparameters"
                warnings.warn(f"GP {self.last_fallback}", RuntimeWarning, stacklevel=3)
                self.last_state = dict(state)
                return model.eval()
        raise FitError(f"GP fit failed: {reason}")

    def __repr__(self) -> str:
        return f"GPSurrogate(device={self.device!r})"
