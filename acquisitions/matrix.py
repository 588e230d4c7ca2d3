"""Which acquisition works with which kind of model: one explicit table.

Support is decided from botorch model traits, never from surrogate names (the
acquisitions package does not import ``surrogates``). A fitted model falls
into one of five kinds (``model_kind``):

- ``gp_rff``: an exact GPyTorch GP (Gaussian likelihood, one output) whose
  kernel has random Fourier features in botorch (RBF or Matern, optionally
  scaled): pathwise posterior samples are global functions;
- ``gp``: any other exact GPyTorch GP (categorical, NNGP/arc-cosine, deep
  kernels);
- ``ensemble``: a botorch ``EnsembleModel`` (an ``EnsemblePosterior`` over
  member functions: deep ensembles, HMC weight samples);
- ``paths``: any other model with a Gaussian posterior that draws joint
  posterior samples as global functions: a ``draw_paths(sample_shape)``
  method returning a module that maps ``... x N x d`` inputs to
  ``broadcast(..., S) x N`` values (botorch's sample-path convention; the
  neural bandit's linearized network);
- ``other``: any other botorch model with a posterior that can be sampled.

``MATRIX[acquisition][kind]`` says how the pair works or why it does not.
Every acquisition's ``check_model`` calls ``check``, which raises
``UnsupportedModelError`` with the reason; ``render_markdown`` turns the table
into the README's surrogate x acquisition matrix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from acquisitions.base import UnsupportedModelError

if TYPE_CHECKING:
    from botorch.models.model import Model

__all__ = [
    "KINDS",
    "MATRIX",
    "MatrixChecked",
    "ModelTraits",
    "Support",
    "check",
    "check_pair",
    "model_kind",
    "model_traits",
    "render_markdown",
    "support",
]

#: kind -> description (the order is the table's).
KINDS: dict[str, str] = {
    "gp_rff": "exact GP with a stationary kernel (RBF/Matern): random Fourier features",
    "gp": "exact GP with another kernel (categorical, NNGP, deep kernel)",
    "ensemble": "sample-based ensemble (EnsembleModel / EnsemblePosterior)",
    "paths": "Gaussian model with global posterior sample paths (draw_paths; neural bandit)",
    "other": "other botorch model",
}


@dataclass(frozen=True)
class ModelTraits:
    """What the acquisitions need to know about a fitted model.

    Attributes:
        exact_gp: A GPyTorch exact GP with a Gaussian likelihood, one output
            and no batch dimensions (can ``fantasize``; exact posterior
            covariances from its kernel).
        random_features: Its kernel has random Fourier features in botorch
            (``botorch.sampling.pathwise``).
        ensemble: A botorch ``EnsembleModel``.
        sample_paths: It has a ``draw_paths(sample_shape)`` method (joint
            posterior draws as functions; see the module docstring).
    """

    exact_gp: bool
    random_features: bool
    ensemble: bool
    sample_paths: bool = False

    @property
    def kind(self) -> str:
        """The model kind (a key of ``KINDS``)."""
        if self.exact_gp:
            return "gp_rff" if self.random_features else "gp"
        if self.ensemble:
            return "ensemble"
        return "paths" if self.sample_paths else "other"


def _has_random_features(kernel: Any, d: int) -> bool:
    from botorch.sampling.pathwise.features.generators import gen_kernel_features

    try:
        gen_kernel_features(kernel, num_inputs=d, num_outputs=2)
    except (NotImplementedError, TypeError, ValueError, RuntimeError):
        return False
    except Exception as exc:  # noqa: BLE001 -- botorch's UnsupportedError and friends
        from botorch.exceptions import UnsupportedError

        if isinstance(exc, UnsupportedError):
            return False
        raise
    return True


def model_traits(model: Model) -> ModelTraits:
    """The traits of a fitted botorch model (no posterior is computed)."""
    from botorch.models.ensemble import EnsembleModel
    from botorch.models.gpytorch import GPyTorchModel
    from gpytorch.likelihoods.gaussian_likelihood import _GaussianLikelihoodBase
    from gpytorch.models import ExactGP

    exact = (
        isinstance(model, ExactGP)
        and isinstance(model, GPyTorchModel)
        and isinstance(getattr(model, "likelihood", None), _GaussianLikelihoodBase)
        and model.num_outputs == 1
        and len(model.batch_shape) == 0
    )
    rff = False
    if exact:
        d = int(model.train_inputs[0].shape[-1])
        rff = _has_random_features(model.covar_module, d)
    return ModelTraits(
        exact_gp=exact,
        random_features=rff,
        ensemble=isinstance(model, EnsembleModel),
        sample_paths=callable(getattr(model, "draw_paths", None)),
    )


def model_kind(model: Model) -> str:
    """The kind of a fitted model (a key of ``KINDS``)."""
    return model_traits(model).kind


@dataclass(frozen=True)
class Support:
    """One cell of the matrix.

    Attributes:
        how: How the acquisition works with this kind of model (or what it
            would need).
        reason: Why the pair is refused; ``None`` when it is supported.
        finite_only: Supported on finite domains only (candidate sets, small
            discrete grids); refused at ``build`` on other domains.
    """

    how: str
    reason: str | None = None
    finite_only: bool = False

    @property
    def ok(self) -> bool:
        """Whether the pair is supported (on some domains)."""
        return self.reason is None


_YES_MC = Support("Monte Carlo over the posterior samples")
_EI_LIKE = {
    "gp_rff": Support("analytic for one point; Monte Carlo with pending points or q > 1"),
    "gp": Support("analytic for one point; Monte Carlo with pending points or q > 1"),
    "ensemble": Support("Monte Carlo over the members (exact average with a stratified sampler)"),
    "paths": Support("analytic for one point; Monte Carlo with pending points or q > 1"),
    "other": Support("analytic on Gaussian posteriors, Monte Carlo otherwise"),
}
_DNEI = (
    "exact for one point (log space); Monte Carlo with pending points or q > 1; "
    "refused at build under a non-Gaussian outcome warping"
)
_NEEDS_GP = "needs an exact GPyTorch GP with a Gaussian likelihood ({what})"

#: acquisition -> kind -> Support. Every registered acquisition has a row.
MATRIX: dict[str, dict[str, Support]] = {
    "qlognei": {k: _YES_MC for k in KINDS},
    "qnei": {k: _YES_MC for k in KINDS},
    "logei": _EI_LIKE,
    "ei": _EI_LIKE,
    "ucb": {
        **_EI_LIKE,
        "ensemble": Support("Monte Carlo (qUCB) over the members"),
    },
    "decision_nei": {
        "gp_rff": Support(_DNEI),
        "gp": Support(_DNEI),
        "ensemble": Support(
            "",
            reason="needs a Gaussian joint posterior (means and covariances on Y's scale); "
            "an ensemble's posterior is sample based (use qlognei or qnei)",
        ),
        "paths": Support(_DNEI),
        "other": Support("supported when the posterior is Gaussian (refused at build otherwise)"),
    },
    "ts": {
        "gp_rff": Support("pathwise posterior samples with random Fourier features"),
        "gp": Support(
            "pathwise posterior samples, prior drawn exactly on an inducing set "
            "(evaluated + quasi-random points) and extended by the kernel"
        ),
        "ensemble": Support("maximizes one seeded ensemble member (exact Thompson sampling)"),
        "paths": Support("joint posterior draws from the model's draw_paths, on any domain"),
        "other": Support(
            "one joint posterior draw over the finite candidate set", finite_only=True
        ),
    },
    "kg": {
        "gp_rff": Support(
            "one-shot qKnowledgeGradient (continuous domains, one point); "
            "discrete knowledge gradient otherwise"
        ),
        "gp": Support(
            "one-shot qKnowledgeGradient (continuous domains, one point); "
            "discrete knowledge gradient otherwise"
        ),
        "ensemble": Support(
            "",
            reason="needs fantasize (a Gaussian update of the posterior after an "
            "observation); ensemble members are fixed functions",
        ),
        "paths": Support("", reason=_NEEDS_GP.format(what="fantasize")),
        "other": Support("", reason=_NEEDS_GP.format(what="fantasize")),
    },
}


def support(acquisition: str, model: Model | str) -> Support:
    """The matrix cell of ``acquisition`` and a model (or a kind name).

    Raises:
        KeyError: ``acquisition`` has no row or ``model`` names no kind.
    """
    kind = model if isinstance(model, str) else model_kind(model)
    if acquisition not in MATRIX:
        raise KeyError(f"acquisition {acquisition!r} has no row in acquisitions.matrix.MATRIX")
    if kind not in KINDS:
        raise KeyError(f"unknown model kind {kind!r}; expected one of {list(KINDS)}")
    return MATRIX[acquisition][kind]


def check(acquisition: str, model: Model) -> Support:
    """Return the cell of a supported pair; raise ``UnsupportedModelError`` otherwise."""
    kind = model_kind(model)
    cell = support(acquisition, kind)
    if not cell.ok:
        raise UnsupportedModelError(
            f"acquisition {acquisition!r} does not support {type(model).__name__} "
            f"({KINDS[kind]}): {cell.reason}."
        )
    return cell


class MatrixChecked:
    """Mixin: ``check_model`` consults the matrix under the acquisition's ``name``."""

    name: str

    def check_model(self, model: Model) -> None:
        """Raise ``UnsupportedModelError`` (with the reason) if the matrix refuses ``model``."""
        check(self.name, model)


def check_pair(surrogate: Any, acquisition: Any) -> None:
    """Refuse, before anything is stored, a pair the matrix rules out.

    Only what the surrogate's class declares is known before a fit (a sample-based
    surrogate, ``is_ensemble``, gives an ensemble model); pairs that depend on the
    fitted model (``auto``, outcome warping) are checked at each proposal, which
    falls back to a space-filling point with the reason.

    Args:
        surrogate: A surrogate instance (its class's ``is_ensemble`` and ``name``).
        acquisition: An acquisition instance (its ``name``).

    Raises:
        ValueError: the pair is unsupported (the message gives the reason).
    """
    row = MATRIX.get(acquisition.name)
    if row is None or not type(surrogate).is_ensemble:
        return
    cell = row["ensemble"]
    if not cell.ok:
        raise ValueError(
            f"acquisition: {acquisition.name!r} does not work with surrogate "
            f"{surrogate.name!r} (sample based): {cell.reason}."
        )


def _kinds_of(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [v if isinstance(v, str) else model_kind(v) for v in value]
    return [model_kind(value)]


def render_markdown(models: Mapping[str, Any], acquisitions: Iterable[str] | None = None) -> str:
    """The surrogate x acquisition matrix as a markdown table with numbered reasons.

    Args:
        models: surrogate name -> a fitted model, a kind name, or a list of
            them (e.g. the same surrogate fitted on a numeric and on a mixed
            space, whose kinds differ).
        acquisitions: Column order (default: every row of ``MATRIX``).

    Returns:
        A markdown table: ``yes``, ``finite domains`` (supported on candidate
        sets and small grids only), ``no [k]`` with reason ``k`` below the
        table; a surrogate whose kinds disagree gets ``partly [k]``.
    """
    acqs = list(acquisitions) if acquisitions is not None else list(MATRIX)
    notes: list[str] = []

    def note(text: str) -> int:
        if text not in notes:
            notes.append(text)
        return notes.index(text) + 1

    lines = ["| surrogate | " + " | ".join(acqs) + " |", "|---|" + "---|" * len(acqs)]
    for name, value in models.items():
        kinds = _kinds_of(value)
        cells = []
        for acq in acqs:
            got = [support(acq, k) for k in kinds]
            refused = [(k, c) for k, c in zip(kinds, got, strict=True) if not c.ok]
            if not refused:
                cells.append("finite domains" if any(c.finite_only for c in got) else "yes")
                continue
            refs = ", ".join(str(note(f"{acq} on {KINDS[k]}: {c.reason}")) for k, c in refused)
            cells.append(f"{'no' if len(refused) == len(got) else 'partly'} [{refs}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if notes:
        lines.append("")
        lines.extend(f"[{i}] {text}." for i, text in enumerate(notes, start=1))
    return "\n".join(lines)
