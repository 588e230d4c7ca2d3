"""The sweep-loop options under ``hydra.sweeper``, checked once (errors name the option and value).

The optimizer's own options (surrogate, acquisition, seed, storage, ...) are
checked by ``bayesopt.Optimizer``; ``trial_timeout`` is also read by
``BayesOptSweeper.setup``, which wraps the task function before the launcher
is built.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bayesopt.resume import DEFAULT_MAX_ATTEMPTS
from bayesopt.timeout import check_timeout

__all__ = ["DEFAULT_LAUNCH_MARGIN", "SweepSettings", "trial_timeout_option"]

#: Seconds a launch may run past ``trial_timeout`` + the hard-exit delay before
#: the sweeper stops waiting for it (process start-up, pickling, a short queue).
DEFAULT_LAUNCH_MARGIN = 60.0


def trial_timeout_option(options: Mapping[str, Any]) -> float | None:
    """``hydra.sweeper.trial_timeout`` checked: ``None`` or positive seconds.

    Raises:
        ValueError: naming the option and the value.
    """
    return check_timeout(options.get("trial_timeout"), "hydra.sweeper.trial_timeout")


@dataclass(frozen=True)
class SweepSettings:
    """The options of the sweep loop (see ``BayesOptSweeperConf`` for their meaning)."""

    n_trials: int = 20
    batch_size: int = 1
    async_launch: bool = True
    max_failure_rate: float = 0.5
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    trial_timeout: float | None = None
    timeout: float | None = None
    launch_margin: float = DEFAULT_LAUNCH_MARGIN
    objective_key: str | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SweepSettings:
        """Read and check the options.

        Raises:
            ValueError: an option out of its range, naming it and the value.
        """
        rate = options.get("max_failure_rate", 0.5)
        if (
            isinstance(rate, bool)
            or not isinstance(rate, numbers.Real)
            or not 0.0 <= float(rate) <= 1.0
        ):
            raise ValueError(
                f"hydra.sweeper.max_failure_rate: expected a number in [0, 1], got {rate!r}."
            )
        margin = options.get("launch_margin", DEFAULT_LAUNCH_MARGIN)
        if (
            isinstance(margin, bool)
            or not isinstance(margin, numbers.Real)
            or not (margin >= 0 and math.isfinite(margin))
        ):
            raise ValueError(
                f"hydra.sweeper.launch_margin: expected a number of seconds >= 0, got {margin!r}."
            )
        key = options.get("objective_key")
        return cls(
            n_trials=_positive_int("n_trials", options.get("n_trials", 20)),
            batch_size=_positive_int("batch_size", options.get("batch_size", 1)),
            async_launch=bool(options.get("async_launch", True)),
            max_failure_rate=float(rate),
            max_attempts=_positive_int(
                "max_attempts", options.get("max_attempts", DEFAULT_MAX_ATTEMPTS)
            ),
            trial_timeout=trial_timeout_option(options),
            timeout=check_timeout(options.get("timeout"), "hydra.sweeper.timeout"),
            launch_margin=float(margin),
            objective_key=None if key is None else str(key),
        )


def _positive_int(label: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"hydra.sweeper.{label}: expected a positive integer, got {value!r}.")
    return int(value)
