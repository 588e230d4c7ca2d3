"""The sweeper's structured config, registered as ``hydra/sweeper=bayesopt``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

__all__ = ["AcquisitionBudgetConf", "BayesOptSweeperConf"]


@dataclass
class AcquisitionBudgetConf:
    """Budget of the acquisition optimizer (``null``: the optimizer's default).

    Attributes:
        num_restarts: Gradient-based restarts.
        raw_samples: Quasi-random points screened for the restarts.
        maxiter: L-BFGS-B iterations per restart.
    """

    num_restarts: int | None = None
    raw_samples: int | None = None
    maxiter: int | None = None


@dataclass
class BayesOptSweeperConf:
    """Options under ``hydra.sweeper`` (see the README, "Hydra sweeps").

    Attributes:
        n_trials: Total finished (COMPLETE, FAILED or PRUNED) trials in the
            study: a rerun of the same command resumes up to the same total.
        batch_size: Trials in flight at once. With a parallel launcher a new
            trial is asked and launched as soon as one finishes (pending-aware);
            with ``async_launch=False`` or the basic launcher, trials run in
            synchronous batches of this size.
        async_launch: Launch one job per freed slot instead of whole batches
            (ignored by the in-process basic launcher, which runs one job at a time).
        direction: ``minimize`` or ``maximize``.
        surrogate: A surrogate registry name (``gp``, ``ibnn``, ``dkl``, ...).
        acquisition: An acquisition registry name (``qlognei``, ``ei``, ...).
        surrogate_options: Constructor options of the surrogate (new keys on
            the command line take a ``+``: ``+hydra.sweeper.surrogate_options.k=v``).
        acquisition_options: Constructor options of the acquisition (likewise).
        optimizer_options: Budget of the acquisition optimizer (``num_restarts``,
            ``raw_samples``, ``maxiter``); smaller means faster asks.
        n_initial: Sobol points before the model (``null``: the optimizer's default).
        seed: Study seed (``null``: drawn once and stored with the study).
        storage: Database URL of the study (``null``: ``bayesopt.db`` in the sweep directory).
        study: Study name (``null``: the Hydra job name).
        max_failure_rate: The sweep stops once the trials that failed in this
            run exceed ``max_failure_rate * max(trials finished by this run, 5)``;
            0 stops at the first failure, 1 never stops. Failures of earlier runs
            do not count, so a rerun after fixing the task goes on.
        max_attempts: Launches of one trial, the first included. A run first
            launches again, under their ids, the trials an earlier run left
            without a result (its sweeper died, or Ctrl-C); a trial launched
            ``max_attempts`` times without a result (say, a point that crashes
            the app each time) is FAILED with the reason instead.
        trial_timeout: Seconds one job may run (``null``: no limit); a longer
            job is FAILED with a reason starting with ``timeout``. A job in a
            process of its own (joblib, submitit, Ray) is interrupted, then
            ended 10 s later if still running; with the basic launcher the
            job runs in the sweeper's main thread, where Python code is
            interrupted but a call stuck in C code is not.
        timeout: Seconds for the whole sweep (Optuna's meaning; ``null``: no
            limit): no trial is launched after it, the ones in flight finish.
        launch_margin: With a parallel launcher and a ``trial_timeout``, the
            sweeper stops waiting for a launch after ``trial_timeout`` + 10 s +
            this many seconds (process start-up, a scheduler queue), fails its
            trials as timed out and frees the slot; a late return is ignored.
            Raise it when jobs may wait in a SLURM queue.
        objective_key: The key of the objective when the task returns a dict.
        params: ``{key: override}`` in Hydra's override grammar
            (``interval``, ``int(interval)``, ``tag(log, ...)``, ``range``,
            ``choice``); plain values are fixed. The command line wins.
    """

    _target_: str = "hydra_plugins.bayesopt_sweeper.bayesopt_sweeper.BayesOptSweeper"
    n_trials: int = 20
    batch_size: int = 1
    async_launch: bool = True
    direction: str = "minimize"
    surrogate: str = "gp"
    acquisition: str = "qlognei"
    surrogate_options: dict[str, Any] = field(default_factory=dict)
    acquisition_options: dict[str, Any] = field(default_factory=dict)
    optimizer_options: AcquisitionBudgetConf = field(default_factory=AcquisitionBudgetConf)
    n_initial: int | None = None
    seed: int | None = None
    storage: str | None = None
    study: str | None = None
    max_failure_rate: float = 0.5
    max_attempts: int = 3
    trial_timeout: float | None = None
    timeout: float | None = None
    launch_margin: float = 60.0
    objective_key: str | None = None
    params: dict[str, Any] | None = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="bayesopt", node=BayesOptSweeperConf, provider="bayesopt"
)
