"""The ``BayesOptSweeper`` Hydra plugin class (import-light; the loop is in ``_impl``)."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.bayesopt_sweeper.config import BayesOptSweeperConf

__all__ = ["BayesOptSweeper"]


class BayesOptSweeper(Sweeper):
    """Bayesian optimization of a Hydra app's return value over its overrides.

    Selected with ``hydra/sweeper=bayesopt``; options are the fields of
    ``BayesOptSweeperConf``. Jobs go through the configured launcher
    (``hydra/launcher=basic|joblib|submitit_local|submitit_slurm|ray``).

    Args:
        **options: The fields of ``BayesOptSweeperConf`` (without ``_target_``).
    """

    def __init__(self, **options: Any) -> None:
        known = set(BayesOptSweeperConf.__dataclass_fields__) - {"_target_"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(
                f"hydra.sweeper: unknown option(s) {unknown}; expected some of {sorted(known)}."
            )
        self.options = {
            k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in options.items()
        }
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None
        self.job_idx = 0

    def setup(
        self,
        *,
        hydra_context: HydraContext,
        task_function: TaskFunction,
        config: DictConfig,
    ) -> None:
        """Keep Hydra's context and build the configured launcher.

        The launcher runs ``TrialTask(task_function)``: each job under
        ``trial_timeout``, and a job that calls ``sys.exit`` is a failed job.

        Raises:
            ValueError: a bad ``hydra.sweeper.trial_timeout`` (named with its value).
        """
        from hydra.core.plugins import Plugins

        from hydra_plugins.bayesopt_sweeper._jobs import TrialTask
        from hydra_plugins.bayesopt_sweeper._settings import trial_timeout_option

        self.config = config
        self.hydra_context = hydra_context
        task = TrialTask(task_function, trial_timeout_option(self.options))
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        """Run the optimization; returns the launched jobs' returns, one list per launch.

        Raises:
            SweepFailedError: more failed trials in this run than ``max_failure_rate`` allows.
            KeyboardInterrupt: Ctrl-C; the trials in flight are FAILED as interrupted
                and the next run launches them again.
            ValueError / TypeError: a bad option or override (named in the message).
        """
        from hydra_plugins.bayesopt_sweeper._impl import run_sweep

        assert self.config is not None and self.launcher is not None
        return run_sweep(self, list(arguments))
