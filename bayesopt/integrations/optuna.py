"""An Optuna sampler driven by bayesopt's surrogates and acquisitions.

``BayesOptSampler`` plugs into any Optuna study, so Optuna's storages
(in memory, RDB, journal), pruners, dashboard and Hydra sweeper work with
bayesopt's models::

    import optuna
    from bayesopt.integrations.optuna import BayesOptSampler

    study = optuna.create_study(sampler=BayesOptSampler(surrogate="gp", seed=0))
    study.optimize(objective, n_trials=30)

How a trial is sampled:

- The relative search space is the intersection of the distributions of the
  completed trials (``optuna.search_space.IntersectionSearchSpace``), less
  parameters with a single value. Optuna distributions map to bayesopt's
  parameters: ``FloatDistribution(low, high, log, step)`` -> ``Float``,
  ``IntDistribution(low, high, log, step)`` -> ``Int``,
  ``CategoricalDistribution(choices)`` -> ``Categorical``.
- Until ``n_startup_trials`` trials have completed, nothing is sampled
  relatively: every parameter comes from the independent sampler (random by
  default), as in Optuna's own samplers.
- Then the surrogate is fitted on the study's COMPLETE trials; RUNNING trials
  (other workers, ``n_jobs > 1``) are pending points of the acquisition; FAIL
  trials stay pending and enter the model at the worst observed value, so a
  region that fails is not proposed again. The proposal runs under a random
  stream derived from ``(seed, trial.number)``.
- Parameters outside the relative space (conditional ones, ones whose range
  changed between trials) come from the independent sampler.

Single-objective only: a multi-objective study raises ``ValueError``.
"""

from __future__ import annotations

import logging
import math
import numbers
import secrets
import threading
from collections.abc import Mapping
from typing import Any

from bayesopt.integrations._extras import require

optuna = require("optuna", "optuna", "bayesopt.integrations.optuna")

from optuna.distributions import (  # noqa: E402 -- after the guarded import
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler, RandomSampler  # noqa: E402
from optuna.search_space import IntersectionSearchSpace  # noqa: E402
from optuna.study import Study, StudyDirection  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402

from bayesopt import proposal as _proposal  # noqa: E402
from bayesopt.space import Categorical, Float, Int, Parameter, Space  # noqa: E402
from bayesopt.trial import Trial as _Trial  # noqa: E402
from bayesopt.trial import TrialState as _State  # noqa: E402

__all__ = ["BayesOptSampler", "to_parameter"]

logger = logging.getLogger(__name__)


def to_parameter(distribution: BaseDistribution) -> Parameter:
    """The bayesopt parameter of an Optuna distribution.

    Raises:
        TypeError: a distribution type bayesopt does not know.
    """
    if isinstance(distribution, FloatDistribution):
        return Float(
            distribution.low, distribution.high, log=distribution.log, step=distribution.step
        )
    if isinstance(distribution, IntDistribution):
        return Int(
            distribution.low, distribution.high, log=distribution.log, step=distribution.step
        )
    if isinstance(distribution, CategoricalDistribution):
        return Categorical(list(distribution.choices))
    raise TypeError(
        f"distribution: expected a Float-, Int- or CategoricalDistribution, got {distribution!r}."
    )


def _direction(study: Study) -> str:
    """``"minimize"`` or ``"maximize"``; ValueError for a multi-objective study."""
    directions = study.directions
    if len(directions) != 1:
        raise ValueError(
            f"BayesOptSampler is single-objective; the study has {len(directions)} objectives "
            f"({[d.name.lower() for d in directions]}). Use a multi-objective Optuna sampler "
            "such as NSGAIISampler or TPESampler."
        )
    return "maximize" if directions[0] == StudyDirection.MAXIMIZE else "minimize"


class BayesOptSampler(BaseSampler):
    """Optuna sampler: bayesopt's surrogate + acquisition over the relative search space.

    Args:
        surrogate: A bayesopt surrogate registry name (``"gp"``, ``"ibnn"``,
            ``"ensemble"``, ...) or a ``surrogates.Surrogate`` instance.
        acquisition: An acquisition registry name (``"qlognei"``, ``"ei"``, ...)
            or an ``acquisitions.Acquisition`` instance.
        n_startup_trials: COMPLETE trials sampled by the independent sampler
            before the model is used.
        seed: Seed of the proposals and of the default independent sampler;
            ``None`` draws one.
        independent_sampler: Sampler for parameters outside the relative
            space and for the start-up trials (default ``RandomSampler(seed)``).
        surrogate_options: Constructor options when ``surrogate`` is a name.
        acquisition_options: Constructor options when ``acquisition`` is a name.
        optimizer_settings: ``acquisitions.optimize.OptimizerSettings`` (restarts,
            raw samples) of the acquisition optimizer.
        consider_running_trials: Treat other RUNNING trials as pending points.
        warn_independent_sampling: Log a warning when a parameter is sampled
            independently after the start-up trials.

    Raises:
        ValueError: ``n_startup_trials`` is negative or not an integer, or the
            surrogate/acquisition pair is unsupported.
    """

    def __init__(
        self,
        surrogate: Any = "gp",
        acquisition: Any = "qlognei",
        n_startup_trials: int = 10,
        seed: int | None = None,
        *,
        independent_sampler: BaseSampler | None = None,
        surrogate_options: Mapping[str, Any] | None = None,
        acquisition_options: Mapping[str, Any] | None = None,
        optimizer_settings: Any = None,
        consider_running_trials: bool = True,
        warn_independent_sampling: bool = True,
    ) -> None:
        from acquisitions.base import get_acquisition
        from acquisitions.matrix import check_pair
        from surrogates.base import get_surrogate

        if (
            isinstance(n_startup_trials, bool)
            or not isinstance(n_startup_trials, numbers.Integral)
            or n_startup_trials < 0
        ):
            raise ValueError(
                f"n_startup_trials: expected a non-negative integer, got {n_startup_trials!r}."
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"seed: expected an integer or None, got {seed!r}.")
        self._surrogate = get_surrogate(surrogate, **dict(surrogate_options or {}))
        self._acquisition = get_acquisition(acquisition, **dict(acquisition_options or {}))
        check_pair(self._surrogate, self._acquisition)
        self._n_startup_trials = int(n_startup_trials)
        self._seed = secrets.randbelow(2**31) if seed is None else int(seed)
        self._independent = independent_sampler or RandomSampler(seed=seed)
        self._settings = optimizer_settings
        self._consider_running = bool(consider_running_trials)
        self._warn_independent = bool(warn_independent_sampling)
        self._search_space = IntersectionSearchSpace()
        # one proposal at a time: torch's thread count and random stream are process-global
        self._lock = threading.Lock()

    def reseed_rng(self) -> None:
        """Draw a new proposal seed and reseed the independent sampler."""
        self._seed = secrets.randbelow(2**31)
        self._independent.reseed_rng()

    # --- relative sampling --------------------------------------------------------
    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """Distributions shared by every completed trial, less single-valued ones."""
        _direction(study)
        return {
            name: dist
            for name, dist in self._search_space.calculate(study).items()
            if not dist.single()
        }

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Propose every parameter of ``search_space`` jointly with the model.

        Returns ``{}`` (all independent) while fewer than ``n_startup_trials``
        trials have completed.
        """
        direction = _direction(study)
        if not search_space:
            return {}
        states = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.FAIL)
        trials = study.get_trials(deepcopy=False, states=states)
        n_complete = sum(t.state == TrialState.COMPLETE for t in trials)
        if n_complete < self._n_startup_trials:
            return {}
        space = Space({name: to_parameter(d) for name, d in search_space.items()})
        history = self._history(space, trials, trial.number)
        with self._lock:
            prop = _proposal.propose(
                space,
                history,
                first_id=trial.number,
                q=1,
                study_seed=self._seed,
                n_initial=0,  # the start-up trials came from the independent sampler
                direction=direction,
                surrogate=self._surrogate,
                acquisition=self._acquisition,
                optimizer_settings=self._settings,
            )
        logger.debug("trial %d: %s", trial.number, prop.attrs[0])
        return prop.params[0]

    def _history(self, space: Space, trials: list[FrozenTrial], current: int) -> list[_Trial]:
        """Optuna trials with every parameter of ``space`` as bayesopt trials."""
        out = []
        for t in trials:
            if t.number == current or not set(space.names) <= t.params.keys():
                continue
            if t.state == TrialState.RUNNING and not self._consider_running:
                continue
            try:
                params = space.validate({n: t.params[n] for n in space.names})
            except (TypeError, ValueError):
                continue  # the trial's range differed; it says nothing about this space
            if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value):
                out.append(_Trial(t.number, params, _State.COMPLETE, float(t.value)))
            elif t.state == TrialState.RUNNING:
                out.append(_Trial(t.number, params, _State.RUNNING))
            else:  # FAIL, or COMPLETE with an infinite value: the point failed
                out.append(
                    _Trial(t.number, params, _State.FAILED, attrs={"fail_reason": "optuna"})
                )
        return sorted(out, key=lambda t: t.id)

    # --- independent sampling ----------------------------------------------------
    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        """Sample one parameter with the independent sampler."""
        _direction(study)
        if self._warn_independent and not param_distribution.single():
            done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if len(done) >= self._n_startup_trials:
                logger.warning(
                    "BayesOptSampler: parameter %r of trial %d is sampled independently by %s "
                    "(it is not in every completed trial with the same distribution).",
                    param_name,
                    trial.number,
                    type(self._independent).__name__,
                )
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """Forward to the independent sampler."""
        self._independent.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: list[float] | None,
    ) -> None:
        """Forward to the independent sampler."""
        self._independent.after_trial(study, trial, state, values)

    def __repr__(self) -> str:
        return (
            f"BayesOptSampler(surrogate={self._surrogate.name!r}, "
            f"acquisition={self._acquisition.name!r}, "
            f"n_startup_trials={self._n_startup_trials}, seed={self._seed})"
        )
