"""The ask/tell optimizer: a study in a storage, a surrogate and an acquisition."""

from __future__ import annotations

import logging
import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from acquisitions.matrix import check_pair
from bayesopt import checks as _checks
from bayesopt import fallbacks as _fallbacks
from bayesopt import proposal as _proposal
from bayesopt import resume as _resume
from bayesopt import rows as _rows
from bayesopt.heartbeat import Heartbeat
from bayesopt.rows import StoredRows
from bayesopt.space import Parameter, Space
from bayesopt.storage import SQLStorage, StaleSnapshotError, validate_study_name
from bayesopt.trial import Trial, TrialState, best_of

__all__ = ["Optimizer"]

logger = logging.getLogger(__name__)

DIRECTIONS = ("minimize", "maximize")
#: How often a proposal is recomputed when other workers keep creating trials.
MAX_PROPOSAL_RETRIES = 50
#: The largest ``ask_batch``: a joint proposal's cost grows with ``q`` (and holds
#: the study's proposal lock meanwhile); ask larger sets in several batches.
MAX_BATCH = 64


class Optimizer:
    """Bayesian optimization with ask/tell, backed by a durable study.

    Args:
        space: ``{name: Float | Int | Categorical}``; ignored-by-equality when a
            stored study is resumed (a different space is an error).
        surrogate: A registry name (``surrogates.available_surrogates()``) or a
            ``surrogates.Surrogate`` instance.
        acquisition: A registry name (``acquisitions.available_acquisitions()``)
            or an ``acquisitions.Acquisition`` instance.
        direction: ``"minimize"`` or ``"maximize"``.
        seed: Study seed; ``None`` draws one and stores it with the study.
        storage: ``None`` (in memory), ``"sqlite:///study.db"`` or a PostgreSQL URL.
        study: Study name inside the storage; an existing one is resumed.
        n_initial: Sobol points before the model (default ``max(4, d // 2 + 1)``, at most 20).
        heartbeat_interval: Seconds between heartbeats of this process's running
            trials (database storages only; ``None`` disables).
        grace_period: A RUNNING trial whose heartbeat is older than this is
            marked FAILED (reason ``stale``) by the next ask of any worker;
            at least twice ``heartbeat_interval``.
        surrogate_options: Constructor options when ``surrogate`` is a name.
        acquisition_options: Constructor options when ``acquisition`` is a name.
        optimizer_settings: ``acquisitions.optimize.OptimizerSettings`` (restarts, raw samples).
    """

    def __init__(
        self,
        space: Mapping[str, Parameter] | Space,
        *,
        surrogate: Any = "gp",
        acquisition: Any = "qlognei",
        direction: str = "minimize",
        seed: int | None = None,
        storage: str | SQLStorage | None = None,
        study: str = "default",
        n_initial: int | None = None,
        heartbeat_interval: float | None = 30.0,
        grace_period: float | None = 300.0,
        surrogate_options: Mapping[str, Any] | None = None,
        acquisition_options: Mapping[str, Any] | None = None,
        optimizer_settings: Any = None,
    ) -> None:
        from acquisitions.base import get_acquisition
        from surrogates.base import get_surrogate

        space = Space(space)
        if direction not in DIRECTIONS:
            raise ValueError(f"direction: expected 'minimize' or 'maximize', got {direction!r}.")
        seed = _checks.seed(seed)
        _checks.n_initial(n_initial)
        validate_study_name(study)
        _checks.heartbeats(heartbeat_interval, grace_period)
        self.surrogate = get_surrogate(surrogate, **dict(surrogate_options or {}))
        self.acquisition = get_acquisition(acquisition, **dict(acquisition_options or {}))
        check_pair(self.surrogate, self.acquisition)
        self.optimizer_settings = optimizer_settings
        self.storage = storage if isinstance(storage, SQLStorage) else SQLStorage(storage)
        if seed is None:
            import secrets

            seed = secrets.randbelow(2**31)
        record, created = self.storage.get_or_create_study(
            study,
            direction=direction,
            space=space.to_json(),
            seed=int(seed),
            n_initial=_proposal.default_n_initial(space) if n_initial is None else int(n_initial),
            attrs={"surrogate": self.surrogate.name, "acquisition": self.acquisition.name},
        )
        stored = Space.from_json(record.space)
        if not created:
            diffs = stored.diff(space)
            if record.direction != direction:
                diffs.append(f"direction: stored {record.direction!r} vs given {direction!r}")
            if diffs:
                raise ValueError(
                    f"study {study!r} already exists in {self.storage.display_url} with a "
                    f"different setup: "
                    + "; ".join(diffs)
                    + ". Use another study name, or Optimizer.load() to reopen it."
                )
            if n_initial is not None and n_initial != record.n_initial:
                warnings.warn(
                    f"study {study!r}: keeping the stored n_initial={record.n_initial}, "
                    f"not {n_initial}.",
                    UserWarning,
                    stacklevel=2,
                )
        # equal to the stored space (checked above); the caller's objects keep what JSON
        # cannot hold, e.g. a Text parameter's embedder callable
        self.space = space
        self.direction = record.direction
        self.study_name = record.name
        self.seed = record.seed
        self.n_initial = record.n_initial
        self._study_id = record.id
        self._study_key = record.uid
        self._worker = _resume.worker_name()
        self._grace_period = grace_period if self.storage.url else None
        self._heartbeat_interval = heartbeat_interval if self.storage.url else None
        self._heartbeat = Heartbeat(self.storage, record.id, self._heartbeat_interval)
        self._rows = StoredRows(space, record.name)
        self._warned_streak = False

    # --- reopening ----------------------------------------------------------------
    @classmethod
    def load(cls, storage: str, study: str = "default", **kwargs: Any) -> Optimizer:
        """Reopen a stored study without re-declaring its space.

        Args:
            storage: The database URL the study lives in.
            study: The study name.
            **kwargs: Other ``Optimizer`` options (surrogate, acquisition, ...);
                by default the surrogate and acquisition the study was created with.

        Raises:
            ValueError: no study of that name in ``storage``.
            FileNotFoundError: no SQLite file at that path (nothing is created).
        """
        store = storage if isinstance(storage, SQLStorage) else SQLStorage(storage, create=False)
        record = store.load_study(study)
        if record is None:
            raise ValueError(
                f"study: no study named {study!r} in {store.display_url}; stored studies are "
                f"{store.study_names()}."
            )
        kwargs.setdefault("surrogate", record.attrs.get("surrogate", "gp"))
        kwargs.setdefault("acquisition", record.attrs.get("acquisition", "qlognei"))
        return cls(
            Space.from_json(record.space),
            direction=record.direction,
            seed=record.seed,
            storage=store,
            study=study,
            **kwargs,
        )

    # --- reading --------------------------------------------------------------------
    @property
    def trials(self) -> list[Trial]:
        """Every trial of the study, ordered by id.

        Parameters read back from the database are checked against the space: a
        trial whose row cannot be used (not JSON, a missing or unknown parameter,
        a value outside the space) keeps ``attrs["invalid"]`` with the reason, is
        skipped by the model and ``best_trial``, and is warned about once.
        """
        return self._rows.trials(self.storage.trials(self._study_id))

    @property
    def best_trial(self) -> Trial | None:
        """The best COMPLETE trial by observed value (None before any)."""
        return best_of(self.trials, self.direction)

    def _trial_id(self, trial: Trial | int) -> int:
        if isinstance(trial, Trial):
            key = trial.study_key
            if key is not None and self._study_key is not None and key != self._study_key:
                raise ValueError(
                    f"trial: trial {trial.id} belongs to study {trial.study!r}, not to this "
                    f"optimizer's study {self.study_name!r} in {self.storage.display_url}; "
                    "tell it to the optimizer that asked it."
                )
            return trial.id
        if isinstance(trial, bool) or not isinstance(trial, numbers.Integral):
            raise TypeError(f"trial: expected a Trial or a trial id, got {trial!r}.")
        return int(trial)

    # --- asking -----------------------------------------------------------------------
    def ask(self) -> Trial:
        """Propose the next point; returns a RUNNING trial (committed before return)."""
        return self._ask(1)[0]

    def ask_batch(self, n: int) -> list[Trial]:
        """Propose ``n`` points jointly, distinct and aware of every pending trial.

        Raises:
            ValueError: ``n`` is not an integer in ``[1, MAX_BATCH]`` (64).
        """
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"ask_batch: n must be a positive integer, got {n!r}.")
        if n > MAX_BATCH:
            raise ValueError(
                f"ask_batch: n={n!r} is more than MAX_BATCH={MAX_BATCH} points proposed "
                "jointly; ask them in several batches."
            )
        return self._ask(int(n))

    def _ask(self, q: int) -> list[Trial]:
        if self._grace_period is not None:
            stale = self.storage.fail_stale(self._study_id, self._grace_period)
            if stale:
                logger.info("marked stale trials %s as FAILED", stale)
        # one proposal at a time per study (SQLStorage.ask_lock); the snapshot check
        # in create_trials still catches trials created without it (add)
        with self.storage.ask_lock(self._study_id):
            return self._propose_and_create(q)

    def _propose_and_create(self, q: int) -> list[Trial]:
        for _ in range(MAX_PROPOSAL_RETRIES):
            snap = self.storage.snapshot(self._study_id)
            usable = _rows.usable(self._rows.trials(snap.trials))
            queued, bad = self._rows.queue(snap.queue)
            if bad and not self.storage.read_only:
                self.storage.drop_queued(self._study_id, bad)
            queued = queued[:q]
            records = [(p, TrialState.RUNNING, None, {"source": "enqueued"}) for _, p in queued]
            if len(queued) < q:
                # the queued points of this batch are pending for the rest of it
                batch_pending = [
                    Trial(snap.next_trial_id + k, p, TrialState.RUNNING)
                    for k, (_, p) in enumerate(queued)
                ]
                prop = _proposal.propose(
                    self.space,
                    usable + batch_pending,
                    first_id=snap.next_trial_id + len(queued),
                    q=q - len(queued),
                    study_seed=self.seed,
                    n_initial=self.n_initial,
                    direction=self.direction,
                    surrogate=self.surrogate,
                    acquisition=self.acquisition,
                    optimizer_settings=self.optimizer_settings,
                )
                records += [
                    (p, TrialState.RUNNING, None, a)
                    for p, a in zip(prop.params, prop.attrs, strict=True)
                ]
            records = [(p, s, v, {**a, "worker": self._worker}) for p, s, v, a in records]
            try:
                trials = self.storage.create_trials(
                    self._study_id,
                    records,
                    expected_next_id=snap.next_trial_id,
                    queue_ids=[qid for qid, _ in queued],
                )
            except StaleSnapshotError as exc:
                logger.debug("recomputing the proposal: %s", exc)
                continue
            self._track(trials)
            self._warn_streak(usable + trials)
            return trials
        raise RuntimeError(
            f"ask: the study changed under {MAX_PROPOSAL_RETRIES} consecutive proposals; "
            "too many workers for one study?"
        )

    def _warn_streak(self, trials: Sequence[Trial]) -> None:
        """Warn once when ``STREAK_WARNING`` proposals in a row fell back to space filling."""
        message = None if self._warned_streak else _fallbacks.streak_message(trials)
        if message is not None:
            self._warned_streak = True
            warnings.warn(
                f"study {self.study_name!r}: {message}",
                _fallbacks.ModelFallbackWarning,
                stacklevel=4,
            )

    def fallback_summary(self) -> _fallbacks.FallbackSummary:
        """How many proposals fell back to space-filling points, or needed a numerical rescue."""
        return _fallbacks.summarize(self.trials)

    # --- relaunching ------------------------------------------------------------------
    def relaunchable(self) -> list[Trial]:
        """Trials to evaluate again under their own id (see ``bayesopt.resume``).

        RUNNING trials of a dead process of this host, and trials FAILED as
        ``interrupted``, in id order.
        """
        return _resume.relaunch_candidates(self.trials)

    def relaunch(
        self, trial: Trial | int, *, max_attempts: int = _resume.DEFAULT_MAX_ATTEMPTS
    ) -> Trial | None:
        """Claim a relaunchable trial for another evaluation under its own id.

        Atomic: of several workers relaunching one trial, one gets it. A trial
        already launched ``max_attempts`` times is FAILED instead, with the
        reason (a point that crashes the app each time cannot stall a sweep).

        Args:
            trial: A trial of ``relaunchable()`` (or its id).
            max_attempts: Launches allowed per trial, the first one included.

        Returns:
            The RUNNING trial to evaluate, or ``None`` (given up, or no longer
            relaunchable: another worker took it or it finished meanwhile).
        """
        tid = self._trial_id(trial)
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, numbers.Integral):
            raise TypeError(f"max_attempts: expected an integer, got {max_attempts!r}.")
        if max_attempts < 1:
            raise ValueError(f"max_attempts: expected an integer >= 1, got {max_attempts!r}.")
        claimed = _resume.relaunch(
            self.storage,
            self._study_id,
            tid,
            worker=self._worker,
            max_attempts=int(max_attempts),
        )
        if claimed is not None:
            self._track([claimed])
        return claimed

    # --- heartbeats -------------------------------------------------------------------
    def _track(self, trials: Sequence[Trial]) -> None:
        self._heartbeat.track(t.id for t in trials)

    def _untrack(self, trial_id: int) -> None:
        self._heartbeat.untrack(trial_id)

    def close(self) -> None:
        """Stop the heartbeat thread and release the database connections."""
        self._heartbeat.stop()
        self.storage.dispose()

    # --- telling ----------------------------------------------------------------------
    def tell(self, trial: Trial | int, value: Any) -> Trial:
        """Record the objective value of a trial; returns the updated trial.

        A non-finite value records the trial as FAILED with a warning. A late
        tell on a trial failed as stale is accepted (nothing measured is lost).

        Raises:
            TypeError: ``value`` is not a real number, or ``trial`` is not a trial/id.
            ValueError: unknown trial id, or the trial is already finished.
        """
        tid = self._trial_id(trial)
        v = _checks.value(value)
        if not math.isfinite(v):
            warnings.warn(
                f"tell: trial {tid} got the non-finite value {v!r}; recorded as FAILED.",
                RuntimeWarning,
                stacklevel=2,
            )
            return self._finish(
                tid,
                TrialState.FAILED,
                None,
                {"fail_reason": f"non-finite value {v!r}"},
                allow_stale=True,
            )
        return self._finish(tid, TrialState.COMPLETE, v, {}, allow_stale=True)

    def fail(self, trial: Trial | int, reason: str = "") -> Trial:
        """Record that the evaluation of a RUNNING trial failed.

        Raises:
            ValueError: unknown trial id, or the trial is already finished.
        """
        tid = self._trial_id(trial)
        return self._finish(
            tid, TrialState.FAILED, None, {"fail_reason": str(reason)}, allow_stale=False
        )

    def _finish(
        self,
        tid: int,
        state: TrialState,
        value: float | None,
        attrs: dict[str, Any],
        allow_stale: bool,
    ) -> Trial:
        def check(current: Trial | None) -> None:
            if current is None:
                raise ValueError(f"trial: no trial with id {tid} in study {self.study_name!r}.")
            stale = (
                current.state is TrialState.FAILED and current.attrs.get("fail_reason") == "stale"
            )
            if current.state is not TrialState.RUNNING and not (allow_stale and stale):
                raise ValueError(
                    f"trial {tid} is already {current.state.value}"
                    + (f" with value {current.value!r}" if current.value is not None else "")
                    + "; a trial can be finished only once."
                )

        out = self.storage.finish_trial(self._study_id, tid, state, value, attrs, check)
        self._untrack(tid)
        return out

    def add(self, params: Mapping[str, Any], value: Any) -> Trial:
        """Record an evaluation made elsewhere (a COMPLETE trial, or FAILED if non-finite).

        Raises:
            ValueError / TypeError: params outside the space, or a non-numeric value.
        """
        clean = self.space.validate(params)
        v = _checks.value(value)
        attrs: dict[str, Any] = {"source": "added", "worker": self._worker}
        if math.isfinite(v):
            state, stored = TrialState.COMPLETE, v
        else:
            warnings.warn(
                f"add: non-finite value {v!r}; recorded as FAILED.", RuntimeWarning, stacklevel=2
            )
            state, stored = TrialState.FAILED, None
            attrs["fail_reason"] = f"non-finite value {v!r}"
        return self.storage.create_trials(self._study_id, [(clean, state, stored, attrs)])[0]

    def enqueue(self, params: Mapping[str, Any]) -> None:
        """Queue a point: the next ask (of any worker on this study) returns it.

        Raises:
            ValueError / TypeError: params outside the space.
        """
        self.storage.enqueue(self._study_id, self.space.validate(params))

    # --- the model's view -------------------------------------------------------------
    def _fit(self, trials: Sequence[Trial]) -> Any:
        trials = _rows.usable(trials)
        n_done = sum(t.state is TrialState.COMPLETE for t in trials)
        if n_done < _proposal.MIN_COMPLETE_FOR_MODEL:
            raise ValueError(
                f"the model needs at least {_proposal.MIN_COMPLETE_FOR_MODEL} "
                f"COMPLETE trials, the study has {n_done}."
            )
        seed = _proposal.derive_seed(self.seed, len(trials), salt=1)
        # the objective's model: completed trials only, no imputed failures
        X, Y, _ = _proposal.training_data(self.space, trials, self.direction, False)
        with _proposal.seeded(seed):
            model, _ = _proposal.fit_model(self.space, X, Y, self.surrogate, seed, trials)
        return model

    def recommend(self) -> Trial | None:
        """The evaluated point with the best posterior mean (the right answer under noise).

        Falls back to ``best_trial`` with fewer than two completed trials.
        """
        trials = self.trials
        done = [t for t in _rows.usable(trials) if t.state is TrialState.COMPLETE]
        if len(done) < _proposal.MIN_COMPLETE_FOR_MODEL:
            return self.best_trial
        mean, _ = self._posterior(trials, [t.params for t in done])
        sign = -1.0 if self.direction == "minimize" else 1.0
        best = max(range(len(done)), key=lambda i: sign * float(mean[i]))
        return done[best]

    def predict(self, params: Sequence[Mapping[str, Any]]) -> tuple[Any, Any]:
        """Posterior mean and standard deviation of the objective at user-space points.

        Args:
            params: A list of ``{name: value}`` points inside the space.

        Returns:
            ``(mean, std)``, numpy arrays of shape ``n``, in the objective's units.
            The model is fitted to the bounded outcomes (``surrogates.outcomes``):
            near a point told an extreme value (a penalty such as
            ``sys.float_info.max``) it predicts about the worst ordinary value.
        """
        if isinstance(params, Mapping):
            raise TypeError("predict: expected a list of parameter dicts, got a single dict.")
        points = [self.space.validate(p) for p in params]
        return self._posterior(self.trials, points)

    def _posterior(self, trials: Sequence[Trial], points: Sequence[Mapping[str, Any]]) -> Any:
        import torch

        model = self._fit(trials)
        X = torch.tensor(
            [self.space.encode(p) for p in points],
            dtype=torch.float64,
            device=getattr(self.surrogate, "device", "cpu"),
        )
        with torch.no_grad():
            post = model.posterior(X.reshape(-1, len(self.space)))
            mean = post.mean.reshape(-1).cpu().numpy()
            std = post.variance.clamp_min(0).sqrt().reshape(-1).cpu().numpy()
        if self.direction == "minimize":
            mean = -mean
        return mean, std

    def __repr__(self) -> str:
        return (
            f"Optimizer(study={self.study_name!r}, storage={self.storage.display_url!r}, "
            f"surrogate={self.surrogate.name!r}, acquisition={self.acquisition.name!r}, "
            f"direction={self.direction!r}, seed={self.seed})"
        )
