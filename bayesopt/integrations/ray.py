"""A Ray Tune searcher driven by a bayesopt ``Optimizer``.

``BayesOptSearch`` proposes each Ray Tune trial with bayesopt's surrogate and
acquisition; every running trial is a pending point, so concurrent trials are
spread out. Use it under ``ConcurrencyLimiter`` (or ``max_concurrent_trials``)::

    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from bayesopt.integrations.ray import BayesOptSearch

    search = BayesOptSearch(metric="loss", mode="min", seed=0, storage="sqlite:///ray.db")
    tuner = tune.Tuner(
        train,
        param_space={"lr": tune.loguniform(1e-4, 1e-1), "layers": tune.randint(1, 5)},
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(search, max_concurrent=4), num_samples=40
        ),
    )

The search space is either bayesopt parameters (``space={"lr": Float(1e-4, 1e-1,
log=True)}``) or Ray Tune's ``param_space``: ``tune.uniform`` / ``quniform`` ->
``Float`` (with ``step``), ``loguniform`` -> log ``Float``, ``randint`` /
``lograndint`` / ``qrandint`` -> ``Int`` (Ray's exclusive upper bounds become
inclusive ones), ``choice`` -> ``Categorical``; nested dicts are flattened with
``/``. Grid search, ``randn`` and ``sample_from`` are refused.

The trials live in a bayesopt study: in memory by default, or in ``storage``
(SQLite / PostgreSQL URL), where they outlast the Ray run and other workers can
share them. A trial that errors is recorded as FAILED; a non-finite metric as
FAILED with a warning. ``save``/``restore`` (called by ``Tuner.fit`` and
``Tuner.restore``) keep the study (for an in-memory study, its trials) and the
map from Ray trial ids to study trials.
"""

from __future__ import annotations

import math
import numbers
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

from bayesopt.integrations._extras import require

require("ray.tune", "ray", "bayesopt.integrations.ray")

from ray.tune.search import Searcher  # noqa: E402 -- after the guarded import
from ray.tune.search import sample as _sample  # noqa: E402
from ray.tune.search.variant_generator import parse_spec_vars  # noqa: E402
from ray.tune.utils import flatten_dict  # noqa: E402
from ray.tune.utils.util import unflatten_dict  # noqa: E402

from bayesopt.space import Categorical, Float, Int, Parameter  # noqa: E402

__all__ = ["BayesOptSearch", "convert_search_space"]

_MODES = {"min": "minimize", "max": "maximize"}


def _grid(lower: float, upper: float, q: float) -> tuple[float, float]:
    """The multiples of ``q`` inside ``[lower, upper]`` (Ray's quantization grid)."""
    lo, hi = lower / q, upper / q
    lo = round(lo) if math.isclose(lo, round(lo)) else math.ceil(lo)
    hi = round(hi) if math.isclose(hi, round(hi)) else math.floor(hi)
    return lo * q, hi * q


def _convert_domain(name: str, domain: Any) -> Parameter:
    sampler = domain.get_sampler()
    q = None
    if isinstance(sampler, _sample.Quantized):
        q, sampler = sampler.q, sampler.get_sampler()
    log = isinstance(sampler, _sample.LogUniform)
    if not (log or isinstance(sampler, _sample.Uniform)):
        raise ValueError(
            f"param_space[{name!r}]: the {type(sampler).__name__} sampler is not supported; "
            "use tune.uniform/loguniform/quniform/randint/lograndint/qrandint/choice."
        )
    if isinstance(domain, _sample.Categorical):
        return Categorical(list(domain.categories))
    if isinstance(domain, _sample.Integer):
        if q is None or q == 1:  # Ray's randint/lograndint exclude the upper bound
            return Int(domain.lower, domain.upper - 1, log=log)
        if log:
            raise ValueError(f"param_space[{name!r}]: a log scale with a step is not supported.")
        lo, hi = _grid(domain.lower, domain.upper, q)
        return Int(int(lo), int(hi), step=int(q))
    if isinstance(domain, _sample.Float):
        if q is None:
            return Float(domain.lower, domain.upper, log=log)
        if log:
            raise ValueError(f"param_space[{name!r}]: a log scale with a step is not supported.")
        lo, hi = _grid(domain.lower, domain.upper, q)
        return Float(lo, hi, step=q)
    raise ValueError(
        f"param_space[{name!r}]: {type(domain).__name__} domains (sample_from) are not supported."
    )


def convert_search_space(config: Mapping[str, Any]) -> dict[str, Parameter]:
    """The bayesopt parameters of a Ray Tune ``param_space`` (constants are left to Ray).

    Args:
        config: A (nested) Ray Tune search space; bayesopt parameters are accepted too.

    Returns:
        ``{"a/b": parameter}`` with nested keys joined by ``/``.

    Raises:
        ValueError: grid search or an unsupported domain (the message names it).
    """
    _, _, grids = parse_spec_vars(dict(config))  # before flattening: {"grid_search": [...]}
    if grids:
        raise ValueError(
            f"param_space: grid search ({'/'.join(map(str, grids[0][0]))!r}) cannot be "
            "optimized; use tune.choice for a categorical parameter."
        )
    flat = flatten_dict(dict(config), prevent_delimiter=True)
    out = {name: p for name, p in flat.items() if isinstance(p, Parameter)}
    _, domains, _ = parse_spec_vars({k: v for k, v in flat.items() if k not in out})
    for path, domain in domains:
        name = "/".join(path)
        out[name] = _convert_domain(name, domain)
    return out


class BayesOptSearch(Searcher):
    """Ray Tune searcher backed by a bayesopt study.

    Args:
        space: bayesopt parameters or a Ray Tune search space; ``None`` to take
            Tune's ``param_space`` (``set_search_properties``).
        metric: The result key to optimize (or from ``TuneConfig``).
        mode: ``"min"`` or ``"max"`` (or from ``TuneConfig``).
        surrogate: A surrogate registry name or instance (``"gp"`` by default).
        acquisition: An acquisition registry name or instance.
        seed: Study seed (``None`` draws one).
        storage: ``None`` (in memory) or a database URL the study is kept in.
        study: Study name in ``storage``; an existing study is resumed.
        n_initial: Sobol points before the model (bayesopt's default otherwise).
        points_to_evaluate: Configurations to try first (flattened with ``/``).
        **optimizer_options: Further ``bayesopt.Optimizer`` options
            (``surrogate_options``, ``optimizer_settings``, ``heartbeat_interval``, ...).
    """

    def __init__(
        self,
        space: Mapping[str, Any] | None = None,
        metric: str | None = None,
        mode: str | None = None,
        *,
        surrogate: Any = "gp",
        acquisition: Any = "qlognei",
        seed: int | None = None,
        storage: str | None = None,
        study: str = "ray",
        n_initial: int | None = None,
        points_to_evaluate: Sequence[Mapping[str, Any]] | None = None,
        **optimizer_options: Any,
    ) -> None:
        if mode is not None and mode not in _MODES:
            raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}.")
        super().__init__(metric=metric, mode=mode)
        self._space = convert_search_space(space) if space else None
        self._kwargs = dict(
            surrogate=surrogate,
            acquisition=acquisition,
            seed=seed,
            storage=storage,
            study=study,
            n_initial=n_initial,
            **optimizer_options,
        )
        self._points = [dict(p) for p in points_to_evaluate or ()]
        self._live: dict[str, int] = {}  # Ray trial id -> study trial id
        self._opt: Any = None
        self._restored_trials: list[tuple] | None = None

    # --- set-up -------------------------------------------------------------------
    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        """Take metric, mode and the search space from Tune (False if already set)."""
        if self._opt is not None or (self._space is not None and config):
            return False
        if config:
            self._space = convert_search_space(config)
        if metric and not self._metric:
            self._metric = metric
        if mode and not self._mode:
            if mode not in _MODES:
                raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}.")
            self._mode = mode
        return True

    @property
    def optimizer(self) -> Any:
        """The ``bayesopt.Optimizer`` of the study (built on first use)."""
        if self._opt is None:
            self._opt = self._build()
        return self._opt

    def _build(self) -> Any:
        from bayesopt.optimizer import Optimizer

        missing = [
            label
            for label, v in (
                ("space", self._space),
                ("metric", self._metric),
                ("mode", self._mode),
            )
            if not v
        ]
        if missing:
            raise RuntimeError(
                f"BayesOptSearch: no {', '.join(missing)} given; pass them to BayesOptSearch "
                "or to tune.TuneConfig / param_space."
            )
        opt = Optimizer(self._space, direction=_MODES[self._mode], **self._kwargs)
        if self._restored_trials:  # an in-memory study saved by save(): same ids, states, values
            opt.storage.create_trials(opt._study_id, self._restored_trials)
            self._restored_trials = None
        for point in self._points:
            opt.enqueue(point)
        self._points = []
        return opt

    # --- the searcher protocol ----------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """Ask the study for the next configuration (nested like the search space)."""
        trial = self.optimizer.ask()
        self._live[trial_id] = trial.id
        return unflatten_dict(dict(trial.params))

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Tell the study the trial's final metric, or record it FAILED."""
        tid = self._live.pop(trial_id, None)
        if tid is None:
            return  # not ours (another searcher's, or already told)
        value = None if result is None else result.get(self._metric)
        if error:
            self.optimizer.fail(tid, f"ray trial {trial_id} errored")
        elif isinstance(value, bool) or not isinstance(value, numbers.Real):
            self.optimizer.fail(
                tid, f"ray trial {trial_id} reported no numeric {self._metric!r}: {value!r}"
            )
        else:
            self.optimizer.tell(tid, float(value))

    def add_evaluated_point(
        self,
        parameters: dict,
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        """Record an evaluation made elsewhere (errored points are not recorded)."""
        if not error and not pruned:
            self.optimizer.add(flatten_dict(dict(parameters)), value)

    # --- state --------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue: settings, the Ray id map and an in-memory study."""
        state = {k: v for k, v in self.__dict__.items() if k != "_opt"}
        state["_live"] = dict(self._live)
        if self._opt is not None and self._kwargs.get("storage") is None:
            state["_restored_trials"] = [
                (t.params, t.state, t.value, t.attrs) for t in self._opt.trials
            ]
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from ``get_state()`` (a stored study is reopened from its storage)."""
        if self._opt is not None:
            self._opt.close()
        self.__dict__.update(state)
        self._opt = None

    def save(self, checkpoint_path: str) -> None:
        """Write ``get_state()`` to ``checkpoint_path`` (pickle)."""
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.get_state(), fh)

    def restore(self, checkpoint_path: str) -> None:
        """Continue from a file written by ``save``."""
        with open(checkpoint_path, "rb") as fh:
            self.set_state(pickle.load(fh))

    def __getstate__(self) -> dict[str, Any]:
        return self.get_state()  # Tune pickles its configuration, searcher included

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._opt = None

    @property
    def trials(self) -> list[Any]:
        """The study's trials (``bayesopt.Trial``), ordered by id."""
        return self.optimizer.trials

    @property
    def best_trial(self) -> Any:
        """The best COMPLETE trial of the study (None before any)."""
        return self.optimizer.best_trial

    def close(self) -> None:
        """Stop the study's heartbeat thread and close its database connections."""
        if self._opt is not None:
            self._opt.close()
