"""The sweep loop: ask -> launch through Hydra's launcher -> tell, with failures and resume.

Each run of the sweep first launches again, under their own ids, the trials an
earlier run left without a result (``bayesopt.resume``: RUNNING trials of a dead
sweeper of this host, trials FAILED as interrupted by Ctrl-C), at most
``max_attempts`` launches each; then it asks new trials until the study holds
``n_trials`` finished ones. A job that raises, exits, crashes its process or
runs past ``trial_timeout`` is a FAILED trial; ``max_failure_rate`` is judged
over the trials this run finished. Ctrl-C fails the trials in flight as
interrupted (the next run relaunches them) and ends the sweep.

Imported only when a sweep starts (it pulls in ``bayesopt.Optimizer``, hence
torch and botorch on the first ask).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from omegaconf import OmegaConf

from bayesopt.minimize import MIN_TRIALS_FOR_RATE, failure_limit_exceeded
from bayesopt.optimizer import MAX_BATCH
from bayesopt.resume import INTERRUPTED
from bayesopt.trial import Trial, TrialState
from hydra_plugins.bayesopt_sweeper._grammar import SearchSpace, parse_search_space
from hydra_plugins.bayesopt_sweeper._jobs import HARD_EXIT_AFTER, launch_failure, objective_value
from hydra_plugins.bayesopt_sweeper._launches import Launches
from hydra_plugins.bayesopt_sweeper._results import RESULTS_FILE, format_params, write_results
from hydra_plugins.bayesopt_sweeper._settings import SweepSettings

__all__ = [
    "RESULTS_FILE",
    "SweepFailedError",
    "failure_limit_exceeded",
    "objective_value",
    "run_sweep",
]

log = logging.getLogger(__name__)


class SweepFailedError(RuntimeError):
    """Too many trials failed (``hydra.sweeper.max_failure_rate`` was passed)."""


def _start_ray(launcher: Any) -> None:
    """Start Ray once, before jobs are launched from several threads.

    ``hydra_ray_launcher`` calls ``ray.init`` inside each ``launch`` when Ray is
    not running, so two first launches from two threads would both call it.
    """
    import ray

    if not ray.is_initialized():
        init = OmegaConf.to_container(launcher.ray_cfg.init, resolve=True) or {}
        log.info("starting Ray for concurrent launches: ray.init(%s)", init)
        ray.init(**init)


#: Set-up a launcher needs before concurrent ``launch`` calls, by class path.
LAUNCHER_PREPARATIONS = {
    "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher": _start_ray,
}


def _consecutive(trials: Sequence[Trial]) -> list[list[Trial]]:
    """Split trials into runs of consecutive ids (one launch each: job number = trial id)."""
    runs: list[list[Trial]] = []
    for t in sorted(trials, key=lambda t: t.id):
        if runs and runs[-1][-1].id + 1 == t.id:
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


def _replace_text(node: Any, old: str, new: str) -> Any:
    """A plain config container with every ``old`` inside its strings replaced by ``new``."""
    if isinstance(node, dict):
        return {k: _replace_text(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_text(v, old, new) for v in node]
    return node.replace(old, new) if isinstance(node, str) else node


class _Sweep:
    """One run of the sweeper: the optimizer, the launch slots and the bookkeeping."""

    def __init__(self, sweeper: Any, arguments: list[str]) -> None:
        from bayesopt import Optimizer

        self.sweeper = sweeper
        opts = sweeper.options
        config = sweeper.config
        self.settings = SweepSettings.from_options(opts)
        self.space: SearchSpace = parse_search_space(
            opts.get("params"), arguments, sweeper.hydra_context.config_loader
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        storage = opts.get("storage") or f"sqlite:///{(self.sweep_dir / 'bayesopt.db').resolve()}"
        self.study = opts.get("study") or str(config.hydra.job.name)
        budget = {k: v for k, v in (opts.get("optimizer_options") or {}).items() if v is not None}
        optimizer_settings = None
        if budget:
            from acquisitions.optimize import OptimizerSettings

            optimizer_settings = OptimizerSettings(**budget)
        # refuses a stored study whose space or direction differ from the declared ones
        self.opt = Optimizer(
            self.space.params,
            surrogate=opts.get("surrogate", "gp"),
            acquisition=opts.get("acquisition", "qlognei"),
            surrogate_options=opts.get("surrogate_options") or None,
            acquisition_options=opts.get("acquisition_options") or None,
            direction=opts.get("direction", "minimize"),
            seed=opts.get("seed"),
            n_initial=opts.get("n_initial"),
            optimizer_settings=optimizer_settings,
            storage=storage,
            study=self.study,
        )
        self.where = self.opt.storage.display_url
        container = OmegaConf.to_container(config, resolve=False)
        if storage != self.where:  # a password in the URL stays out of the files we write
            container = _replace_text(container, storage, self.where)
        OmegaConf.save(OmegaConf.create(container), self.sweep_dir / "multirun.yaml")
        from hydra._internal.core_plugins.basic_launcher import BasicLauncher

        # the basic launcher runs jobs inside this process: one at a time, main thread
        self.concurrent = self.settings.async_launch and not isinstance(
            sweeper.launcher, BasicLauncher
        )
        if self.concurrent:
            cls = type(sweeper.launcher)
            prepare = LAUNCHER_PREPARATIONS.get(f"{cls.__module__}.{cls.__qualname__}")
            if prepare is not None:
                prepare(sweeper.launcher)
        self.returns: list[Sequence[JobReturn]] = []
        self.failures: list[str] = []  # reasons of the trials this run failed
        self.n_finished = 0  # trials finished by this run
        self.n_failed = 0
        self.in_flight: dict[int, Trial] = {}  # asked or claimed, not yet told or failed
        self.started = time.monotonic()  # reset when the loop starts
        self.out_of_time = False

    # --- the loop -----------------------------------------------------------------
    def run(self) -> list[Sequence[JobReturn]]:
        s = self.settings
        self.started = time.monotonic()
        trials = self.opt.trials
        candidates = [t.id for t in self.opt.relaunchable()]
        log.info(
            "bayesopt sweeper: study %r in %s; %d of %d trials finished; %s in flight "
            "(%s launches); parameters %s",
            self.study,
            self.where,
            sum(t.state.is_finished for t in trials),
            s.n_trials,
            s.batch_size,
            "asynchronous" if self.concurrent else "batched",
            list(self.space.params),
        )
        if candidates:
            log.info(
                "launching again trials %s left without a result by an earlier run "
                "(at most max_attempts=%d launches each)",
                candidates,
                s.max_attempts,
            )
        stop: str | None = None
        pending = Launches(self._launch_limit())
        try:
            while True:
                progress = False
                if stop is None:
                    new = self._next_trials(candidates)
                    progress = bool(new)
                    for chunk in self._chunks(self._checked(new)):
                        if self.concurrent:
                            pending.start(chunk, lambda c=chunk: self._launch(c))
                        else:
                            self._record(chunk, *self._call(chunk))
                    if progress and not self.concurrent:
                        stop = self._failure_stop()
                if pending:
                    self._collect(pending)
                    if stop is None:
                        stop = self._failure_stop()
                elif not progress:
                    break
        except KeyboardInterrupt:
            self._interrupted()
            raise
        finally:
            write_results(
                self.sweep_dir, self.opt, n_trials=s.n_trials, fixed_overrides=self.space.fixed
            )
            self.opt.close()
        if stop is not None:
            raise SweepFailedError(stop)
        return self.returns

    def _next_trials(self, candidates: list[int]) -> list[Trial]:
        """Trials to launch now: earlier runs' trials first, then new asks, up to free slots."""
        s = self.settings
        free = s.batch_size - len(self.in_flight)
        if free <= 0 or self._timed_out():
            return []
        out: list[Trial] = []
        while candidates and len(out) < free:
            # the claim counts the attempt before the launch; None: given up (FAILED) or taken
            trial = self.opt.relaunch(candidates.pop(0), max_attempts=s.max_attempts)
            if trial is not None:
                log.info(
                    "trial %d: launched again under its id (attempt %s of %d)",
                    trial.id,
                    trial.attrs.get("attempts"),
                    s.max_attempts,
                )
                out.append(trial)
        # a stored row that does not fit the space is no trial of this sweep: not counted
        trials = [t for t in self.opt.trials if "invalid" not in t.attrs]
        finished = sum(t.state.is_finished for t in trials)
        running = sum(t.state is TrialState.RUNNING for t in trials)
        n_new = min(free - len(out), s.n_trials - finished - running, MAX_BATCH)
        if n_new > 0:
            tic = time.perf_counter()
            out += self.opt.ask_batch(n_new)
            log.debug("asked %d trial(s) in %.2f s", n_new, time.perf_counter() - tic)
        self.in_flight.update((t.id, t) for t in out)
        return out

    def _timed_out(self) -> bool:
        """Whether ``hydra.sweeper.timeout`` has passed (then nothing new is launched)."""
        limit = self.settings.timeout
        if limit is None or time.monotonic() - self.started < limit:
            return False
        if not self.out_of_time:
            self.out_of_time = True
            log.info("timeout=%gs passed: no new trials; the ones in flight finish", limit)
        return True

    def _chunks(self, trials: list[Trial]) -> list[list[Trial]]:
        if self.concurrent:
            return [[t] for t in trials]
        return _consecutive(trials)

    # --- launching ----------------------------------------------------------------
    def _checked(self, trials: list[Trial]) -> list[Trial]:
        """Trials whose jobs can be composed; others FAILED (a bad config fails all, raises)."""
        ok = []
        for t in trials:
            try:
                self.space.overrides(t.params)
            except (TypeError, ValueError) as exc:  # a stored point outside the declared space
                self._finish(t, None, f"invalid params, not launched: {exc}")
            else:
                ok.append(t)
        if not ok:
            return ok
        try:
            self.sweeper.validate_batch_is_legal([self.space.overrides(t.params) for t in ok])
        except Exception as exc:
            for t in ok:
                self._finish(t, None, f"invalid overrides: {exc}")
            raise
        return ok

    def _launch(self, trials: list[Trial]) -> Sequence[JobReturn]:
        batch = [self.space.overrides(t.params) for t in trials]
        return self.sweeper.launcher.launch(batch, initial_job_idx=trials[0].id)

    def _call(self, chunk: list[Trial]) -> tuple[Sequence[JobReturn] | BaseException, float]:
        """An in-process launch; an exception or ``sys.exit`` of the launch fails its trials."""
        tic = time.monotonic()
        try:
            out: Sequence[JobReturn] | BaseException = self._launch(chunk)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 -- a broken launch fails its trials
            out = exc
        return out, time.monotonic() - tic

    def _launch_limit(self) -> float | None:
        """Seconds after which the sweeper stops waiting for a launch (``None``: no limit)."""
        s = self.settings
        if s.trial_timeout is None:
            return None
        return s.trial_timeout + HARD_EXIT_AFTER + s.launch_margin

    def _collect(self, pending: Launches) -> None:
        """Record the launches that returned; fail those given up at their time limit."""
        returned, given_up = pending.wait()
        for launch in returned:
            self._record(launch.trials, launch.outcome, launch.elapsed)
        s = self.settings
        for launch in given_up:
            reason = (
                f"timeout: the launch did not return within {pending.limit:g} s (trial_timeout="
                f"{s.trial_timeout:g} s + {HARD_EXIT_AFTER:g} s to end the job + launch_margin="
                f"{s.launch_margin:g} s); a late return is ignored"
            )
            for t in launch.trials:
                self._finish(t, None, reason)

    # --- outcomes -----------------------------------------------------------------
    def _record(
        self,
        trials: list[Trial],
        returns: Sequence[JobReturn] | BaseException,
        elapsed: float,
    ) -> None:
        if isinstance(returns, BaseException):
            # a launch of several jobs may outlast trial_timeout without any job doing so
            elapsed = elapsed if len(trials) == 1 else 0.0
            reason = launch_failure(returns, elapsed, self.settings.trial_timeout)
            outcomes: list[tuple[float | None, str]] = [(None, reason)] * len(trials)
        else:
            self.returns.append(returns)
            outcomes = [objective_value(r, self.settings.objective_key) for r in returns]
        for t, (value, reason) in zip(trials, outcomes, strict=True):
            self._finish(t, value, reason)

    def _finish(self, trial: Trial, value: float | None, reason: str) -> None:
        """Tell ``value`` or fail with ``reason``; count it as finished by this run."""
        self.in_flight.pop(trial.id, None)
        try:
            if value is not None:
                self.opt.tell(trial, value)
                log.info("trial %d: %s -> %.6g", trial.id, format_params(trial.params), value)
            else:
                log.warning(
                    "trial %d FAILED: %s (%s)", trial.id, reason, format_params(trial.params)
                )
                self.opt.fail(trial, reason)
        except ValueError as exc:  # finished meanwhile (failed as stale by another worker)
            log.warning("trial %d: %s", trial.id, exc)
            return
        self.n_finished += 1
        if value is None:
            self.n_failed += 1
            self.failures.append(f"trial {trial.id}: {reason}")

    def _interrupted(self) -> None:
        """Ctrl-C: fail the trials in flight as interrupted, so the next run relaunches them."""
        reason = f"{INTERRUPTED} (KeyboardInterrupt)"
        failed = []
        for trial in list(self.in_flight.values()):
            try:
                self.opt.fail(trial, reason)
            except ValueError:  # finished meanwhile
                continue
            failed.append(trial.id)
        self.in_flight.clear()
        log.warning(
            "interrupted (KeyboardInterrupt): trial(s) %s FAILED as %r; rerun the same "
            "command to launch them again under their ids (at most max_attempts=%d launches "
            "each) and finish the sweep",
            failed,
            reason,
            self.settings.max_attempts,
        )

    def _failure_stop(self) -> str | None:
        rate = self.settings.max_failure_rate
        if not failure_limit_exceeded(self.n_failed, self.n_finished, rate):
            return None
        return (
            f"bayesopt sweeper stopped: {self.n_failed} of {self.n_finished} finished trials "
            f"failed in this run, more than max_failure_rate={rate} allows "
            f"(failures > max_failure_rate * max(finished, {MIN_TRIALS_FOR_RATE}); failures of "
            f"earlier runs do not count). Last failures: {'; '.join(self.failures[-3:])}. "
            f"Study {self.study!r} in {self.where}; fix the task and rerun the same command to "
            "resume, or raise hydra.sweeper.max_failure_rate."
        )


def run_sweep(sweeper: Any, arguments: list[str]) -> list[Sequence[JobReturn]]:
    """Run a sweep for a set-up ``BayesOptSweeper``; returns the launches' job returns."""
    return _Sweep(sweeper, arguments).run()
