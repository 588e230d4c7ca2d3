"""Optimizers the benchmark runner compares, behind one small ask/tell interface.

The runner drives every optimizer through the subset of ``bayesopt.Optimizer``'s
API that a benchmark needs::

    opt = factory(space, direction=..., seed=..., storage=..., study=..., n_initial=...)
    trial = opt.ask()                  # a RUNNING Trial, committed to the storage
    opt.tell(trial, value)             # COMPLETE (or FAILED for a non-finite value)
    opt.trials                         # every stored trial, by id
    opt.close()

so our own optimizer needs no adapter (``bayesopt_optimizer`` just builds one
from a Hydra config node), and the outside baselines (``RandomSearch``,
``OptunaSearch``) store their trials in the same ``SQLStorage`` schema: a suite
run has one database, read back the same way for every optimizer, and a resumed
job continues from what is stored.

Fairness rules (issue 6): the same seed, the same budget (the runner's loop) and
the same initial design size. ``n_initial=None`` means our default
(``bayesopt.proposal.default_n_initial``: ``max(4, d // 2 + 1)``, at most 20), and
Optuna's samplers get it as ``n_startup_trials``. Random search has no design.

Resuming: ``RandomSearch`` draws trial ``k`` from a generator seeded with
``(seed, k)``, so a resumed run is identical to an uninterrupted one. Optuna's
samplers keep state in memory only: a resumed ``OptunaSearch`` replays the stored
trials into a fresh in-memory study and reseeds its sampler from ``(seed,
number of stored trials)``, so it continues sensibly but not bit-identically.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping
from typing import Any

from bayesopt.space import Parameter, Space
from bayesopt.storage.sql import SQLStorage
from bayesopt.trial import Trial, TrialState

__all__ = [
    "OptunaSearch",
    "RandomSearch",
    "StoredSearch",
    "bayesopt_optimizer",
    "optuna_distributions",
    "resolve_n_initial",
]


def resolve_n_initial(space: Mapping[str, Parameter] | Space, n_initial: int | None) -> int:
    """The initial design size every optimizer of a comparison uses.

    Args:
        space: The search space.
        n_initial: An explicit size, or ``None`` for our default
            (``max(4, d // 2 + 1)``, at most 20).

    Returns:
        The size, a non-negative int.

    Raises:
        ValueError: ``n_initial`` is not a non-negative integer or ``None``.
    """
    if n_initial is None:
        from bayesopt.proposal import default_n_initial

        return default_n_initial(Space(space))
    if isinstance(n_initial, bool) or not isinstance(n_initial, numbers.Integral) or n_initial < 0:
        raise ValueError(f"n_initial: expected a non-negative integer or None, got {n_initial!r}.")
    return int(n_initial)


def _storage(storage: str | SQLStorage | None) -> SQLStorage:
    return storage if isinstance(storage, SQLStorage) else SQLStorage(storage)


# --------------------------------------------------------------------------- ours


def bayesopt_optimizer(
    space: Mapping[str, Parameter] | Space,
    *,
    direction: str,
    seed: int,
    storage: str | SQLStorage | None = None,
    study: str = "default",
    n_initial: int | None = None,
    surrogate: Mapping[str, Any] | str = "gp",
    acquisition: Mapping[str, Any] | str = "qlognei",
    name: str = "bayesopt",
) -> Any:
    """Our ``Optimizer`` from the nodes of a ``conf/optimizer`` config.

    Args:
        space: The search space.
        direction: ``"minimize"`` or ``"maximize"``.
        seed: The study seed.
        storage: A database URL or ``SQLStorage`` (``None``: in memory).
        study: The study name inside the storage.
        n_initial: Sobol points before the model (``None``: the default).
        surrogate: A registry name, or ``{name: <registry name>, **options}``
            (a ``conf/surrogate`` node).
        acquisition: Likewise for the acquisition (a ``conf/acquisition`` node).
        name: The label of this configuration (stored as a study attribute by
            the runner; unused here).

    Returns:
        A ``bayesopt.Optimizer`` without heartbeats (one process per study).
    """
    from bayesopt import Optimizer

    surrogate_name, surrogate_options = _registry_node(surrogate, "surrogate")
    acquisition_name, acquisition_options = _registry_node(acquisition, "acquisition")
    return Optimizer(
        space,
        surrogate=surrogate_name,
        acquisition=acquisition_name,
        direction=direction,
        seed=seed,
        storage=_storage(storage),
        study=study,
        n_initial=n_initial,
        heartbeat_interval=None,
        grace_period=None,
        surrogate_options=surrogate_options,
        acquisition_options=acquisition_options,
    )


def _registry_node(node: Mapping[str, Any] | str, label: str) -> tuple[str, dict[str, Any]]:
    if isinstance(node, str):
        return node, {}
    if isinstance(node, Mapping) and isinstance(node.get("name"), str):
        options = dict(node)
        return options.pop("name"), options
    raise ValueError(f"{label}: expected a registry name or a mapping with `name`, got {node!r}.")


# --------------------------------------------------------------------------- baselines


class StoredSearch:
    """Base class of an outside optimizer whose trials live in a ``SQLStorage``.

    Subclasses implement ``_propose(trial_id)`` (the next point, in user units)
    and may override ``_observe(trial)`` (called once for every finished trial:
    the stored ones at construction, then each ``tell``).

    Args:
        space: The search space.
        direction: ``"minimize"`` or ``"maximize"``.
        seed: The seed.
        storage: A database URL or ``SQLStorage`` (``None``: in memory).
        study: The study name; an existing study with the same space resumes.
        n_initial: Initial design size (``None``: ours, see ``resolve_n_initial``).
        name: Label stored in the study's attributes.

    Raises:
        ValueError: The stored study has a different space or direction.
    """

    name = "stored_search"

    def __init__(
        self,
        space: Mapping[str, Parameter] | Space,
        *,
        direction: str,
        seed: int,
        storage: str | SQLStorage | None = None,
        study: str = "default",
        n_initial: int | None = None,
        name: str | None = None,
    ) -> None:
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"direction: expected 'minimize' or 'maximize', got {direction!r}.")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed: expected an integer, got {seed!r}.")
        self.space = Space(space)
        self.name = name or self.name
        self.storage = _storage(storage)
        record, created = self.storage.get_or_create_study(
            study,
            direction=direction,
            space=self.space.to_json(),
            seed=int(seed),
            n_initial=resolve_n_initial(self.space, n_initial),
            attrs={"optimizer": self.name},
        )
        if not created:
            diffs = Space.from_json(record.space).diff(self.space)
            if record.direction != direction:
                diffs.append(f"direction: stored {record.direction!r} vs given {direction!r}")
            if diffs:
                raise ValueError(
                    f"study {study!r} already exists with a different setup: " + "; ".join(diffs)
                )
        self.direction = record.direction
        self.seed = record.seed
        self.n_initial = record.n_initial
        self.study_name = record.name
        self._study_id = record.id
        self._setup()
        for t in self.trials:
            if t.state.is_finished:
                self._observe(t)

    # --- hooks ----------------------------------------------------------------------
    def _setup(self) -> None:
        """Build the optimizer's own state (before the stored trials are replayed)."""

    def _propose(self, trial_id: int) -> dict[str, Any]:
        raise NotImplementedError

    def _observe(self, trial: Trial) -> None:
        """Learn from a finished trial."""

    # --- the interface ----------------------------------------------------------------
    @property
    def trials(self) -> list[Trial]:
        """Every stored trial of the study, ordered by id."""
        return self.storage.trials(self._study_id)

    def ask(self) -> Trial:
        """Propose the next point; returns a RUNNING trial (committed)."""
        snap = self.storage.snapshot(self._study_id)
        params = self.space.validate(self._propose(snap.next_trial_id))
        return self.storage.create_trials(
            self._study_id,
            [(params, TrialState.RUNNING, None, {"source": self.name})],
            expected_next_id=snap.next_trial_id,
        )[0]

    def tell(self, trial: Trial | int, value: Any) -> Trial:
        """Record a value; a non-finite one records the trial as FAILED with a warning."""
        v = float(value)
        if not math.isfinite(v):
            warnings.warn(
                f"tell: non-finite value {v!r}; recorded as FAILED.", RuntimeWarning, stacklevel=2
            )
            return self._finish(trial, TrialState.FAILED, None, {"fail_reason": f"value {v!r}"})
        return self._finish(trial, TrialState.COMPLETE, v, {})

    def fail(self, trial: Trial | int, reason: str = "") -> Trial:
        """Record that the evaluation failed."""
        return self._finish(trial, TrialState.FAILED, None, {"fail_reason": str(reason)})

    def close(self) -> None:
        """Release the database connections."""
        self.storage.dispose()

    def _finish(
        self, trial: Trial | int, state: TrialState, value: float | None, attrs: dict[str, Any]
    ) -> Trial:
        tid = trial.id if isinstance(trial, Trial) else int(trial)

        def check(current: Trial | None) -> None:
            if current is None or current.state is not TrialState.RUNNING:
                raise ValueError(f"trial {tid}: expected a RUNNING trial, got {current!r}.")

        out = self.storage.finish_trial(self._study_id, tid, state, value, attrs, check)
        self._observe(out)
        return out


class RandomSearch(StoredSearch):
    """Uniform random search in the encoded space (log and logit scales are uniform there).

    Trial ``k`` is drawn from ``numpy.random.default_rng([seed, k])``: the same
    seed gives the same sequence, also across a resume. Categoricals are uniform
    over their choices; integers are rounded in the user's units.
    """

    name = "random"

    def _propose(self, trial_id: int) -> dict[str, Any]:
        import numpy as np

        u = np.random.default_rng([int(self.seed), int(trial_id)]).random(len(self.space))
        return self.space.from_unit(u.tolist())


class OptunaSearch(StoredSearch):
    """An Optuna sampler driven through ``Study.ask``/``tell`` on an in-memory study.

    Args:
        space: The search space (``Float``, ``Int``, ``Categorical``; a logit
            scale becomes a linear one, which Optuna lacks).
        sampler: A class name in ``optuna.samplers`` (``"TPESampler"``,
            ``"GPSampler"``, ``"RandomSampler"``, ...).
        sampler_options: Further constructor options of the sampler.
        **kwargs: ``direction``, ``seed``, ``storage``, ``study``, ``n_initial``
            and ``name`` as for ``StoredSearch``. ``n_initial`` is passed as
            ``n_startup_trials`` to samplers that take it.

    Raises:
        ValueError: An unknown sampler name.
    """

    name = "optuna"

    def __init__(
        self,
        space: Mapping[str, Parameter] | Space,
        *,
        sampler: str = "TPESampler",
        sampler_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.sampler_name = sampler
        self.sampler_options = dict(sampler_options or {})
        super().__init__(space, **kwargs)

    def _setup(self) -> None:
        import inspect

        import numpy as np
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        cls = getattr(optuna.samplers, self.sampler_name, None)
        if not (isinstance(cls, type) and issubclass(cls, optuna.samplers.BaseSampler)):
            raise ValueError(
                f"sampler: expected a class name in optuna.samplers, got {self.sampler_name!r}."
            )
        options = dict(self.sampler_options)
        if "n_startup_trials" in inspect.signature(cls).parameters:
            options.setdefault("n_startup_trials", self.n_initial)
        n_stored = len(self.storage.snapshot(self._study_id).trials)
        seed = int(self.seed)
        if n_stored:  # resuming: a fresh stream, not a replay of the first one
            seed = int(np.random.SeedSequence([seed, n_stored]).generate_state(1)[0])
        self.study = optuna.create_study(
            direction=self.direction, sampler=cls(seed=seed, **options)
        )
        self.dists = optuna_distributions(self.space.params)
        self._asked: dict[int, Any] = {}

    def _propose(self, trial_id: int) -> dict[str, Any]:
        trial = self.study.ask(self.dists)
        self._asked[trial_id] = trial
        return dict(trial.params)

    def _observe(self, trial: Trial) -> None:
        import optuna

        pending = self._asked.pop(trial.id, None)
        complete = trial.state is TrialState.COMPLETE
        if pending is not None:
            self.study.tell(
                pending,
                trial.value if complete else None,
                state=None if complete else optuna.trial.TrialState.FAIL,
            )
            return
        # a stored trial (resume) or one asked by an earlier process
        self.study.add_trial(
            optuna.trial.create_trial(
                params=dict(trial.params),
                distributions=self.dists,
                value=trial.value if complete else None,
                state=optuna.trial.TrialState.COMPLETE
                if complete
                else optuna.trial.TrialState.FAIL,
            )
        )


def optuna_distributions(space: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna distributions over the same box as a bayesopt space.

    Args:
        space: Parameter name -> bayesopt ``Float``, ``Int`` or ``Categorical``.
            A ``Float(logit=True)`` becomes a linear ``FloatDistribution`` (Optuna
            has no logit scale).

    Returns:
        Parameter name -> ``optuna.distributions.BaseDistribution``.

    Raises:
        TypeError: For a parameter kind Optuna cannot express here (``Text``).
    """
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    dists: dict[str, Any] = {}
    for name, param in space.items():
        kind = getattr(param, "kind", None)
        if kind == "float":
            dists[name] = FloatDistribution(
                float(param.low), float(param.high), log=param.log, step=param.step
            )
        elif kind == "int":
            dists[name] = IntDistribution(
                int(param.low),
                int(param.high),
                log=param.log,
                step=1 if param.log else int(param.step or 1),
            )
        elif kind == "categorical":
            dists[name] = CategoricalDistribution(list(param.choices))
        else:
            raise TypeError(f"Parameter {name!r}: no Optuna distribution for {param!r}.")
    return dists
