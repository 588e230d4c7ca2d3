"""``minimize``: the ask/evaluate/tell loop with a progress bar."""

from __future__ import annotations

import logging
import numbers
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bayesopt.optimizer import Optimizer
from bayesopt.proposal import n_finished
from bayesopt.trial import Trial, TrialState, best_of

__all__ = ["LoopResult", "minimize", "run_loop"]

logger = logging.getLogger(__name__)


@dataclass
class LoopResult:
    """What a loop did besides filling the study.

    Attributes:
        ask_seconds: ``{trial id: seconds its ask took}`` for the trials asked
            by this loop (a batch's time is shared equally among its trials).
        interrupted: Whether a ``KeyboardInterrupt`` stopped the loop.
    """

    ask_seconds: dict[int, float] = field(default_factory=dict)
    interrupted: bool = False


def run_loop(
    opt: Optimizer,
    fn: Callable[[dict[str, Any]], Any],
    n_trials: int,
    *,
    batch_size: int = 1,
    max_failure_rate: float = 0.5,
    progress: bool = True,
    desc: str | None = None,
    postfix: Callable[[Trial], dict[str, str]] | None = None,
) -> LoopResult:
    """Ask, evaluate and tell until the study holds ``n_trials`` finished trials.

    An exception raised by ``fn`` fails that trial and the loop goes on; a
    ``KeyboardInterrupt`` fails the trials being evaluated (reason
    ``interrupted``) and stops the loop with everything stored.

    Args:
        opt: The optimizer (a resumed study continues to the same total).
        fn: The objective, called with the parameter dict; returns a number.
        n_trials: Total COMPLETE or FAILED trials wanted in the study.
        batch_size: Trials asked together (``ask_batch``), then evaluated in turn.
        max_failure_rate: Stop with ``RuntimeError`` once more than this
            fraction of the finished trials failed (checked from 5 trials on).
        progress: Show a tqdm progress bar with the best value so far.
        desc: Label of the progress bar (default: the study name).
        postfix: Extra progress-bar fields computed from the best trial.

    Returns:
        A ``LoopResult``.
    """
    _check_count("n_trials", n_trials, minimum=0)
    _check_count("batch_size", batch_size, minimum=1)
    if not (isinstance(max_failure_rate, numbers.Real) and 0 <= max_failure_rate <= 1):
        raise ValueError(
            f"max_failure_rate: expected a number in [0, 1], got {max_failure_rate!r}."
        )
    from tqdm.auto import tqdm

    result = LoopResult()
    finished = n_finished(opt.trials)
    bar = tqdm(
        total=n_trials,
        initial=min(finished, n_trials),
        disable=not progress,
        unit="trial",
        desc=desc or opt.study_name,
        dynamic_ncols=True,
    )
    trials: list[Trial] = []
    try:
        while finished < n_trials:
            t0 = time.perf_counter()
            k = min(batch_size, n_trials - finished)
            trials = opt.ask_batch(k) if k > 1 else [opt.ask()]
            per_trial = (time.perf_counter() - t0) / len(trials)
            result.ask_seconds.update({t.id: per_trial for t in trials})
            for i, trial in enumerate(trials):
                _evaluate(opt, fn, trial, trials[i + 1 :])
            trials = []
            all_trials = opt.trials
            finished = n_finished(all_trials)
            bar.update(min(finished, n_trials) - bar.n)
            best = best_of(all_trials, opt.direction)
            if best is not None:
                bar.set_postfix(
                    {"best": f"{best.value:.6g}", **(postfix(best) if postfix else {})},
                    refresh=False,
                )
            n_failed = sum(t.state is TrialState.FAILED for t in all_trials)
            if finished >= 5 and n_failed > max_failure_rate * finished:
                raise RuntimeError(
                    f"{n_failed} of {finished} trials failed, more than "
                    f"max_failure_rate={max_failure_rate}; stopping. The failures are stored "
                    "in the study (see trial.attrs['fail_reason'])."
                )
    except KeyboardInterrupt:
        for t in trials:  # a batch interrupted before its evaluation
            _fail_if_running(opt, t.id, "interrupted (KeyboardInterrupt)")
        result.interrupted = True
        logger.warning("interrupted after %d finished trials; the study is stored", finished)
    finally:
        bar.close()
    return result


def _evaluate(
    opt: Optimizer, fn: Callable[[dict[str, Any]], Any], trial: Trial, rest: list[Trial]
) -> None:
    try:
        value = fn(dict(trial.params))
    except KeyboardInterrupt:
        for t in (trial, *rest):
            _fail_if_running(opt, t.id, "interrupted (KeyboardInterrupt)")
        raise
    except Exception as exc:  # noqa: BLE001 -- a failed evaluation is data, not a crash
        logger.warning("trial %d failed: %s: %s", trial.id, type(exc).__name__, exc)
        opt.fail(trial, f"{type(exc).__name__}: {exc}")
        return
    opt.tell(trial, value)


def _fail_if_running(opt: Optimizer, trial_id: int, reason: str) -> None:
    current = opt.storage.get_trial(opt._study_id, trial_id)
    if current is not None and current.state is TrialState.RUNNING:
        opt.fail(trial_id, reason)


def _check_count(label: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{label}: expected an integer >= {minimum}, got {value!r}.")


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
    if run_loop(
        opt, fn, n_trials, max_failure_rate=max_failure_rate, progress=progress
    ).interrupted:
        warnings.warn(
            "minimize: interrupted; the study so far is stored in the optimizer.",
            UserWarning,
            stacklevel=2,
        )
    return opt
