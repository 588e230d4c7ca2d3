"""The sweep loop: ask -> launch through Hydra's launcher -> tell, with failures and resume.

Imported only when a sweep starts (it pulls in ``bayesopt.Optimizer``, hence
torch and botorch on the first ask).
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import socket
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from bayesopt.trial import Trial, TrialState
from hydra_plugins.bayesopt_sweeper._grammar import SearchSpace, parse_search_space

__all__ = ["SweepFailedError", "failure_limit_exceeded", "objective_value", "run_sweep"]

log = logging.getLogger(__name__)

#: The failure rate is judged over at least this many finished trials, so one
#: early failure does not stop a sweep (``max_failure_rate=0`` still does).
MIN_TRIALS_FOR_RATE = 5
RESULTS_FILE = "optimization_results.yaml"


class SweepFailedError(RuntimeError):
    """Too many trials failed (``hydra.sweeper.max_failure_rate`` was passed)."""


def failure_limit_exceeded(n_failed: int, n_finished: int, max_failure_rate: float) -> bool:
    """Whether ``n_failed > max_failure_rate * max(n_finished, MIN_TRIALS_FOR_RATE)``."""
    return n_failed > max_failure_rate * max(n_finished, MIN_TRIALS_FOR_RATE)


def objective_value(ret: JobReturn, objective_key: str | None) -> tuple[float | None, str]:
    """The objective of a finished job, or ``(None, reason)`` when the trial failed.

    A job that raised, returned a non-number or a non-finite number is a failure;
    a dict (or DictConfig) return is read at ``objective_key``.
    """
    if ret.status != JobStatus.COMPLETED:
        try:
            ret.return_value  # re-raises the job's exception  # noqa: B018
        except Exception as exc:  # noqa: BLE001 -- any exception of the task is a failed trial
            return None, f"job raised {type(exc).__name__}: {exc}"
        return None, f"job status {ret.status}"
    value = ret.return_value
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        if objective_key is None:
            return None, (
                f"job returned a dict with keys {sorted(map(str, value))}; set "
                "hydra.sweeper.objective_key to the key of the objective"
            )
        if objective_key not in value:
            return None, (
                f"job returned a dict without objective_key {objective_key!r} "
                f"(keys: {sorted(map(str, value))})"
            )
        value = value[objective_key]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()  # numpy scalars, one-element tensors/arrays
        except (ValueError, RuntimeError):
            pass
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None, f"job returned {value!r} ({type(value).__name__}), not a number"
    value = float(value)
    if not math.isfinite(value):
        return None, f"job returned the non-finite value {value!r}"
    return value, ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _orphans(trials: Sequence[Trial]) -> list[Trial]:
    """RUNNING trials asked by a sweeper process of this host that no longer exists.

    They were in flight when an earlier run of the sweep was interrupted; the
    resumed sweep launches them again under the same trial id (and job number).
    Their heartbeat is not renewed (it belonged to the dead process), so a rerun
    longer than the optimizer's grace period may see them marked FAILED (stale)
    meanwhile; the late result is still recorded (a late ``tell`` is accepted).
    """
    host, me = socket.gethostname(), os.getpid()
    out = []
    for t in trials:
        if t.state is not TrialState.RUNNING:
            continue
        worker = str(t.attrs.get("worker", ""))
        w_host, _, w_pid = worker.rpartition(":")
        if w_host == host and w_pid.isdigit() and int(w_pid) != me and not _pid_alive(int(w_pid)):
            out.append(t)
    return out


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


class _Sweep:
    """One run of the sweeper: the optimizer, the launch slots and the bookkeeping."""

    def __init__(self, sweeper: Any, arguments: list[str]) -> None:
        from bayesopt import Optimizer

        self.sweeper = sweeper
        opts = sweeper.options
        config = sweeper.config
        self.n_trials = _positive_int("n_trials", opts.get("n_trials", 20))
        self.batch_size = _positive_int("batch_size", opts.get("batch_size", 1))
        self.max_failure_rate = float(opts.get("max_failure_rate", 0.5))
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise ValueError(
                f"hydra.sweeper.max_failure_rate: expected a number in [0, 1], "
                f"got {self.max_failure_rate!r}."
            )
        self.objective_key = opts.get("objective_key")
        self.space: SearchSpace = parse_search_space(
            opts.get("params"), arguments, sweeper.hydra_context.config_loader
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(config, self.sweep_dir / "multirun.yaml")
        self.storage = (
            opts.get("storage") or f"sqlite:///{(self.sweep_dir / 'bayesopt.db').resolve()}"
        )
        self.study = opts.get("study") or str(config.hydra.job.name)
        settings = None
        budget = {k: v for k, v in (opts.get("optimizer_options") or {}).items() if v is not None}
        if budget:
            from acquisitions.optimize import OptimizerSettings

            settings = OptimizerSettings(**budget)
        self.opt = Optimizer(
            self.space.params,
            surrogate=opts.get("surrogate", "gp"),
            acquisition=opts.get("acquisition", "qlognei"),
            surrogate_options=opts.get("surrogate_options") or None,
            acquisition_options=opts.get("acquisition_options") or None,
            direction=opts.get("direction", "minimize"),
            seed=opts.get("seed"),
            n_initial=opts.get("n_initial"),
            optimizer_settings=settings,
            storage=self.storage,
            study=self.study,
        )
        from hydra._internal.core_plugins.basic_launcher import BasicLauncher

        # the basic launcher runs jobs inside this process: one at a time, main thread
        self.concurrent = bool(opts.get("async_launch", True)) and not isinstance(
            sweeper.launcher, BasicLauncher
        )
        if self.concurrent:
            cls = type(sweeper.launcher)
            prepare = LAUNCHER_PREPARATIONS.get(f"{cls.__module__}.{cls.__qualname__}")
            if prepare is not None:
                prepare(sweeper.launcher)
        self.returns: list[Sequence[JobReturn]] = []
        self.failures: list[str] = []

    # --- launching ----------------------------------------------------------------
    def _launch(self, trials: list[Trial]) -> Sequence[JobReturn]:
        batch = [self.space.overrides(t.params) for t in trials]
        return self.sweeper.launcher.launch(batch, initial_job_idx=trials[0].id)

    def _validate(self, trials: list[Trial]) -> None:
        """Compose each job's config before launching any; fail the trials if that breaks."""
        if not trials:
            return
        try:
            self.sweeper.validate_batch_is_legal([self.space.overrides(t.params) for t in trials])
        except Exception as exc:
            for t in trials:
                self.opt.fail(t, f"invalid overrides: {exc}")
            raise

    def _record(self, trials: list[Trial], returns: Sequence[JobReturn] | BaseException) -> None:
        if isinstance(returns, BaseException):
            reason = f"launcher raised {type(returns).__name__}: {returns}"
            outcomes: list[tuple[float | None, str]] = [(None, reason)] * len(trials)
        else:
            self.returns.append(returns)
            outcomes = [objective_value(r, self.objective_key) for r in returns]
        for t, (value, reason) in zip(trials, outcomes, strict=True):
            if value is not None:
                self.opt.tell(t, value)
                log.info("trial %d: %s -> %.6g", t.id, _fmt(t.params), value)
                continue
            self.failures.append(f"trial {t.id}: {reason}")
            log.warning("trial %d FAILED: %s (%s)", t.id, reason, _fmt(t.params))
            try:
                self.opt.fail(t, reason)
            except ValueError as exc:  # already failed as stale by another worker
                log.warning("trial %d: %s", t.id, exc)

    # --- the loop -----------------------------------------------------------------
    def run(self) -> list[Sequence[JobReturn]]:
        trials = self.opt.trials
        orphans = _orphans(trials)
        n_done = sum(t.state.is_finished for t in trials)
        log.info(
            "bayesopt sweeper: study %r in %s; %d of %d trials finished; %s in flight "
            "(%s launches); parameters %s",
            self.study,
            self.storage,
            n_done,
            self.n_trials,
            self.batch_size,
            "asynchronous" if self.concurrent else "batched",
            list(self.space.params),
        )
        if orphans:
            log.info(
                "relaunching trials %s left RUNNING by an interrupted sweep",
                [t.id for t in orphans],
            )
        stop: str | None = None
        pending: dict[Future, list[Trial]] = {}
        pool = ThreadPoolExecutor(self.batch_size) if self.concurrent else None
        clean_exit = False
        try:
            while True:
                launched = False
                if stop is None:
                    new = self._next_trials(orphans, sum(map(len, pending.values())))
                    relaunched = {t.id for t in new}
                    orphans = [t for t in orphans if t.id not in relaunched]
                    self._validate(new)
                    for chunk in self._chunks(new):
                        launched = True
                        if pool is not None:
                            pending[pool.submit(self._launch, chunk)] = chunk
                        else:
                            self._record(chunk, self._call(chunk))
                    if launched and pool is None:
                        stop = self._failure_stop()
                if pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        chunk = pending.pop(fut)
                        exc = fut.exception()
                        self._record(chunk, exc if exc is not None else fut.result())
                    if stop is None:
                        stop = self._failure_stop()
                elif not launched:
                    break
            clean_exit = True
        finally:
            if pool is not None:
                pool.shutdown(wait=clean_exit, cancel_futures=True)
            self._write_results()
            self.opt.close()
        if stop is not None:
            raise SweepFailedError(stop)
        return self.returns

    def _call(self, chunk: list[Trial]) -> Sequence[JobReturn] | BaseException:
        try:
            return self._launch(chunk)
        except Exception as exc:  # noqa: BLE001 -- a broken launch fails its trials
            return exc

    def _chunks(self, trials: list[Trial]) -> list[list[Trial]]:
        if self.concurrent:
            return [[t] for t in trials]
        return _consecutive(trials)

    def _next_trials(self, orphans: list[Trial], in_flight: int) -> list[Trial]:
        """Trials to launch now: orphans first, then new asks up to the free slots."""
        free = self.batch_size - in_flight
        if free <= 0:
            return []
        out = orphans[:free]
        trials = self.opt.trials
        finished = sum(t.state.is_finished for t in trials)
        running = sum(t.state is TrialState.RUNNING for t in trials)
        n_new = min(free - len(out), self.n_trials - finished - running)
        if n_new > 0:
            tic = time.perf_counter()
            asked = self.opt.ask_batch(n_new)
            log.debug("asked %d trial(s) in %.2f s", n_new, time.perf_counter() - tic)
            out += asked
        return out

    def _failure_stop(self) -> str | None:
        trials = self.opt.trials
        finished = [t for t in trials if t.state.is_finished]
        failed = [t for t in finished if t.state is TrialState.FAILED]
        if not failure_limit_exceeded(len(failed), len(finished), self.max_failure_rate):
            return None
        last = "; ".join(self.failures[-3:]) or "; ".join(
            f"trial {t.id}: {t.attrs.get('fail_reason', '')}" for t in failed[-3:]
        )
        return (
            f"bayesopt sweeper stopped: {len(failed)} of {len(finished)} finished trials "
            f"failed, more than max_failure_rate={self.max_failure_rate} allows "
            f"(failures > max_failure_rate * max(finished, {MIN_TRIALS_FOR_RATE})). "
            f"Last failures: {last}. Study {self.study!r} in {self.storage}; fix the task "
            "and rerun the same command to resume, or raise hydra.sweeper.max_failure_rate."
        )

    # --- results ------------------------------------------------------------------
    def _write_results(self) -> None:
        trials = self.opt.trials
        best = self.opt.best_trial
        results = {
            "name": "bayesopt",
            "study": self.study,
            "storage": self.storage,
            "direction": self.opt.direction,
            "best_trial": None if best is None else best.id,
            "best_params": None if best is None else dict(best.params),
            "best_value": None if best is None else best.value,
            "fixed_overrides": list(self.space.fixed),
            "n_complete": sum(t.state is TrialState.COMPLETE for t in trials),
            "n_failed": sum(t.state is TrialState.FAILED for t in trials),
            "n_trials": self.n_trials,
        }
        OmegaConf.save(OmegaConf.create(results), self.sweep_dir / RESULTS_FILE)
        if best is not None:
            log.info("best trial %d: %s -> %.6g", best.id, _fmt(best.params), best.value)


def _fmt(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v!r}" for k, v in params.items())


def _positive_int(label: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"hydra.sweeper.{label}: expected a positive integer, got {value!r}.")
    return int(value)


def run_sweep(sweeper: Any, arguments: list[str]) -> list[Sequence[JobReturn]]:
    """Run a sweep for a set-up ``BayesOptSweeper``; returns the launches' job returns."""
    return _Sweep(sweeper, arguments).run()
