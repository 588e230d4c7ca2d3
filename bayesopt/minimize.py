"""``minimize``: the ask/evaluate/tell loop with a progress bar."""

from __future__ import annotations

import logging
import numbers
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from bayesopt.optimizer import Optimizer
from bayesopt.proposal import n_finished
from bayesopt.trial import TrialState

__all__ = ["minimize", "run_loop"]

logger = logging.getLogger(__name__)


def run_loop(
    opt: Optimizer,
    fn: Callable[[dict[str, Any]], Any],
    n_trials: int,
    *,
    max_failure_rate: float = 0.5,
    progress: bool = True,
    callback: Callable[[Optimizer, Any], None] | None = None,
) -> Optimizer:
    """Ask, evaluate and tell until the study holds ``n_trials`` finished trials.

    Args:
        opt: The optimizer (a resumed study continues to the same total).
        fn: The objective, called with the parameter dict; returns a number.
        n_trials: Total COMPLETE or FAILED trials wanted in the study.
        max_failure_rate: Stop with ``RuntimeError`` once more than this
            fraction of the finished trials failed (checked after 5 trials).
        progress: Show a tqdm progress bar.
        callback: Called as ``callback(opt, trial)`` after every tell.

    Returns:
        The optimizer. A ``KeyboardInterrupt`` stops the loop cleanly: the
        running trial is recorded as FAILED (``interrupted``) and the loop
        returns with everything stored.
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, numbers.Integral) or n_trials < 0:
        raise ValueError(f"n_trials: expected a non-negative integer, got {n_trials!r}.")
    if not (isinstance(max_failure_rate, numbers.Real) and 0 <= max_failure_rate <= 1):
        raise ValueError(
            f"max_failure_rate: expected a number in [0, 1], got {max_failure_rate!r}."
        )
    from tqdm.auto import tqdm

    trials = opt.trials
    done = n_finished(trials)
    n_failed = sum(t.state is TrialState.FAILED for t in trials)
    sign = -1.0 if opt.direction == "minimize" else 1.0
    best = opt.best_trial
    bar = tqdm(
        total=n_trials,
        initial=min(done, n_trials),
        disable=not progress,
        unit="trial",
        desc=f"{opt.study_name}",
        dynamic_ncols=True,
    )
    trial = None
    try:
        while done < n_trials:
            trial = opt.ask()
            try:
                value = fn(dict(trial.params))
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 -- a failed evaluation is data
                trial = opt.fail(trial, f"{type(exc).__name__}: {exc}")
                logger.warning("trial %d failed: %s", trial.id, exc)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    trial = opt.tell(trial, value)
            if trial.state is TrialState.FAILED:
                n_failed += 1
            elif best is None or sign * trial.value > sign * best.value:
                best = trial
            done += 1
            bar.update(1)
            if best is not None:
                bar.set_postfix(best=f"{best.value:.6g}", failed=n_failed)
            if callback is not None:
                callback(opt, trial)
            trial = None
            if done >= 5 and n_failed > max_failure_rate * done:
                raise RuntimeError(
                    f"minimize: {n_failed} of {done} trials failed, more than "
                    f"max_failure_rate={max_failure_rate}; stopping. The failures are stored "
                    "in the study (see trial.attrs['fail_reason'])."
                )
    except KeyboardInterrupt:
        if trial is not None and trial.state is TrialState.RUNNING:
            opt.fail(trial, "interrupted")
        warnings.warn(
            f"minimize: interrupted after {done} finished trials; the study is stored.",
            UserWarning,
            stacklevel=2,
        )
    finally:
        bar.close()
    return opt


def minimize(
    fn: Callable[[dict[str, Any]], Any],
    space: Mapping[str, Any],
    n_trials: int = 50,
    *,
    max_failure_rate: float = 0.5,
    progress: bool = True,
    **optimizer_kwargs: Any,
) -> Optimizer:
    """Minimize ``fn`` over ``space`` with Bayesian optimization.

    Args:
        fn: Objective called as ``fn(params)`` with a ``{name: value}`` dict. An
            exception marks the trial FAILED and the loop goes on (up to
            ``max_failure_rate``); NaN/inf also count as failures.
        space: ``{name: Float | Int | Categorical}``.
        n_trials: Total finished trials in the study (a resumed study continues
            to this total).
        max_failure_rate: Fraction of failed trials that stops the loop.
        progress: Show a progress bar.
        **optimizer_kwargs: ``Optimizer`` options (``surrogate``, ``seed``,
            ``storage``, ...). ``direction`` defaults to ``"minimize"``.

    Returns:
        The ``Optimizer``; see ``best_trial`` and ``recommend()``.

    Example:
        >>> from bayesopt import Float, minimize
        >>> opt = minimize(lambda p: (p["x"] - 2) ** 2, {"x": Float(-5, 5)}, n_trials=15)
        >>> round(opt.best_trial.params["x"], 1)
        2.0
    """
    opt = Optimizer(space, **optimizer_kwargs)
    return run_loop(opt, fn, n_trials, max_failure_rate=max_failure_rate, progress=progress)
