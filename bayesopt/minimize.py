"""``minimize``: the ask/evaluate/tell loop with a progress bar."""

from __future__ import annotations

import logging
import numbers
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bayesopt.fallbacks import FallbackSummary
from bayesopt.fallbacks import summarize as summarize_fallbacks
from bayesopt.optimizer import MAX_BATCH, Optimizer
from bayesopt.proposal import n_finished
from bayesopt.resume import DEFAULT_MAX_ATTEMPTS, INTERRUPTED
from bayesopt.timeout import TrialTimeoutError, call_with_timeout, check_timeout
from bayesopt.trial import Trial, TrialState, best_of

__all__ = [
    "MIN_TRIALS_FOR_RATE",
    "LoopResult",
    "failure_limit_exceeded",
    "minimize",
    "run_loop",
]

logger = logging.getLogger(__name__)


#: The failure rate is judged over at least this many trials, so one early
#: failure does not stop a run (``max_failure_rate=0`` still stops at the first).
MIN_TRIALS_FOR_RATE = 5


def failure_limit_exceeded(n_failed: int, n_finished: int, max_failure_rate: float) -> bool:
    """Whether ``n_failed > max_failure_rate * max(n_finished, MIN_TRIALS_FOR_RATE)``.

    ``minimize`` and the Hydra sweeper apply it to the trials finished by the
    current invocation only, so a rerun after fixing the task is not stopped by
    the failures of the earlier run.
    """
    return n_failed > max_failure_rate * max(n_finished, MIN_TRIALS_FOR_RATE)


@dataclass
class LoopResult:
    """What a loop did besides filling the study.

    Attributes:
        ask_seconds: ``{trial id: seconds its ask took}`` for the trials asked
            by this loop (a batch's time is shared equally among its trials).
        interrupted: Whether a ``KeyboardInterrupt`` stopped the loop.
        n_finished: Trials finished by this loop (relaunched ones included).
        n_failed: Of those, the FAILED ones.
        relaunched: Ids of the trials this loop evaluated again under their own id.
        timed_out: Whether the loop stopped because ``timeout`` passed.
        fallbacks: The study's ``FallbackSummary`` at the end of the loop.
    """

    ask_seconds: dict[int, float] = field(default_factory=dict)
    interrupted: bool = False
    n_finished: int = 0
    n_failed: int = 0
    relaunched: list[int] = field(default_factory=list)
    timed_out: bool = False
    fallbacks: FallbackSummary | None = None


class _Loop:
    """The state of one ``run_loop`` call: the bar, the counts, the evaluation."""

    def __init__(
        self,
        opt: Optimizer,
        fn: Callable[[dict[str, Any]], Any],
        bar: Any,
        trial_timeout: float | None,
        postfix: Callable[[Trial], dict[str, str]] | None,
    ) -> None:
        self.opt, self.fn, self.bar = opt, fn, bar
        self.trial_timeout = trial_timeout
        self.postfix = postfix
        self.result = LoopResult()

    def evaluate(self, trial: Trial, rest: Sequence[Trial] = ()) -> None:
        """Evaluate one RUNNING trial and tell (or fail) it."""
        opt = self.opt
        try:
            value = call_with_timeout(self.fn, dict(trial.params), timeout=self.trial_timeout)
        except KeyboardInterrupt:
            for t in (trial, *rest):
                _fail_if_running(opt, t.id, f"{INTERRUPTED} (KeyboardInterrupt)")
            raise
        except TrialTimeoutError as exc:
            logger.warning("trial %d: %s", trial.id, exc)
            self._finished(opt.fail(trial, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 -- a failed evaluation is data, not a crash
            logger.warning("trial %d failed: %s: %s", trial.id, type(exc).__name__, exc)
            self._finished(opt.fail(trial, f"{type(exc).__name__}: {exc}"))
            return
        self._finished(opt.tell(trial, value))

    def _finished(self, trial: Trial) -> None:
        self.result.n_finished += 1
        self.result.n_failed += trial.state is TrialState.FAILED

    def refresh(self, n_trials: int) -> int:
        """Update the bar from the stored study; returns its finished trials."""
        all_trials = self.opt.trials
        finished = n_finished(all_trials)
        self.bar.update(min(finished, n_trials) - self.bar.n)
        fields = {}
        best = best_of(all_trials, self.opt.direction)
        if best is not None:
            fields["best"] = f"{best.value:.6g}"
            fields.update(self.postfix(best) if self.postfix else {})
        summary = summarize_fallbacks(all_trials)
        if summary.n_fallback:
            fields["fallbacks"] = str(summary.n_fallback)
        if fields:
            self.bar.set_postfix(fields, refresh=False)
        return finished


def run_loop(
    opt: Optimizer,
    fn: Callable[[dict[str, Any]], Any],
    n_trials: int,
    *,
    batch_size: int = 1,
    max_failure_rate: float = 0.5,
    trial_timeout: float | None = None,
    timeout: float | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    progress: bool = True,
    desc: str | None = None,
    postfix: Callable[[Trial], dict[str, str]] | None = None,
) -> LoopResult:
    """Ask, evaluate and tell until the study holds ``n_trials`` finished trials.

    Trials left without a result by an earlier run (RUNNING trials of a dead
    process of this host, trials FAILED as ``interrupted``) are evaluated again
    first, under their own id, up to ``max_attempts`` launches each. An
    exception raised by ``fn`` fails that trial and the loop goes on; a
    ``KeyboardInterrupt`` fails the trials being evaluated (reason
    ``interrupted``; the next run relaunches them) and stops the loop with
    everything stored.

    Args:
        opt: The optimizer (a resumed study continues to the same total).
        fn: The objective, called with the parameter dict; returns a number.
        n_trials: Total finished (COMPLETE, FAILED or PRUNED) trials wanted in the study.
        batch_size: Trials asked together (``ask_batch``), then evaluated in turn.
        max_failure_rate: Stop with ``RuntimeError`` once the failed trials of
            this call exceed ``max_failure_rate * max(trials finished by this
            call, 5)``; failures of earlier runs do not count.
        trial_timeout: Seconds one evaluation may take; a longer one is
            FAILED with reason ``timeout`` (see ``bayesopt.timeout`` for what
            can be stopped).
        timeout: Seconds for the whole call (Optuna's meaning): no new trial
            is asked after it; the ones running finish.
        max_attempts: Launches allowed per trial when relaunching.
        progress: Show a tqdm progress bar with the best value so far (and the
            number of fallbacks to space-filling points, when there are any).
        desc: Label of the progress bar (default: the study name).
        postfix: Extra progress-bar fields computed from the best trial.

    Returns:
        A ``LoopResult``.
    """
    _check_count("n_trials", n_trials, minimum=0)
    _check_count("batch_size", batch_size, minimum=1)
    _check_count("max_attempts", max_attempts, minimum=1)
    if not (isinstance(max_failure_rate, numbers.Real) and 0 <= max_failure_rate <= 1):
        raise ValueError(
            f"max_failure_rate: expected a number in [0, 1], got {max_failure_rate!r}."
        )
    trial_timeout = check_timeout(trial_timeout, "trial_timeout")
    timeout = check_timeout(timeout, "timeout")
    from tqdm.auto import tqdm

    start = time.monotonic()
    finished = n_finished(opt.trials)
    bar = tqdm(
        total=n_trials,
        initial=min(finished, n_trials),
        disable=not progress,
        unit="trial",
        desc=desc or opt.study_name,
        dynamic_ncols=True,
    )
    loop = _Loop(opt, fn, bar, trial_timeout, postfix)
    result = loop.result
    trials: list[Trial] = []
    try:
        for old in opt.relaunchable():
            trial = opt.relaunch(old, max_attempts=max_attempts)
            if trial is not None:
                attempt = trial.attrs["attempts"]
                logger.info("trial %d: evaluated again (attempt %s)", trial.id, attempt)
                result.relaunched.append(trial.id)
                loop.evaluate(trial)
        finished = loop.refresh(n_trials)
        while finished < n_trials:
            if timeout is not None and time.monotonic() - start >= timeout:
                result.timed_out = True
                break
            _check_failures(result, max_failure_rate)
            t0 = time.perf_counter()
            k = min(batch_size, MAX_BATCH, n_trials - finished)
            trials = opt.ask_batch(k) if k > 1 else [opt.ask()]
            per_trial = (time.perf_counter() - t0) / len(trials)
            result.ask_seconds.update({t.id: per_trial for t in trials})
            for i, trial in enumerate(trials):
                loop.evaluate(trial, trials[i + 1 :])
            trials = []
            finished = loop.refresh(n_trials)
        _check_failures(result, max_failure_rate)
    except KeyboardInterrupt:
        for t in trials:  # a batch interrupted before its evaluation
            _fail_if_running(opt, t.id, f"{INTERRUPTED} (KeyboardInterrupt)")
        result.interrupted = True
        logger.warning("interrupted after %d finished trials; the study is stored", finished)
    finally:
        bar.close()
        result.fallbacks = opt.fallback_summary()
    return result


def _check_failures(result: LoopResult, max_failure_rate: float) -> None:
    if failure_limit_exceeded(result.n_failed, result.n_finished, max_failure_rate):
        raise RuntimeError(
            f"{result.n_failed} of the {result.n_finished} trials finished by this run failed, "
            f"more than max_failure_rate={max_failure_rate} allows (failures > "
            f"max_failure_rate * max(finished, {MIN_TRIALS_FOR_RATE})); stopping. The failures "
            "are stored in the study (see trial.attrs['fail_reason']); fix the objective and "
            "run again to continue."
        )


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
    trial_timeout: float | None = None,
    timeout: float | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
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
        max_failure_rate: Fraction of this call's finished trials that may
            fail before the loop stops (judged over at least 5 trials).
        trial_timeout: Seconds one evaluation may take (FAILED ``timeout`` beyond).
        timeout: Seconds for the whole call: no trial is asked after it.
        max_attempts: Launches per trial when an interrupted trial is relaunched.
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
    result = run_loop(
        opt,
        fn,
        n_trials,
        max_failure_rate=max_failure_rate,
        trial_timeout=trial_timeout,
        timeout=timeout,
        max_attempts=max_attempts,
        progress=progress,
    )
    if result.interrupted:
        warnings.warn(
            "minimize: interrupted; the study so far is stored in the optimizer.",
            UserWarning,
            stacklevel=2,
        )
    return opt
