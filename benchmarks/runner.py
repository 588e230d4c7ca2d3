r"""Benchmark runner: optimizers x tasks x seeds on Hydra multirun, resumable, with a report.

A named suite (``conf/suite/<name>.yaml``) in one command::

    .venv/bin/python -m benchmarks.runner suite=quick
    .venv/bin/python -m benchmarks.runner suite=full hydra.launcher.n_jobs=2
    .venv/bin/python -m benchmarks.runner suite=full task=branin,hartmann6   # part of a suite
    .venv/bin/python -m benchmarks.runner suite=quick dry_run=true           # the commands only

or any grid directly in Hydra's multirun syntax (the report is written when it ends)::

    .venv/bin/python -m benchmarks.runner -m optimizer=bayesopt,random,optuna_tpe \
        task=branin,hartmann6 'seed=range(0,10)' name=mygrid

One job is one optimizer (``conf/optimizer``) on one task (``conf/task``) with one
seed, for ``budget`` evaluations (default: the task's, 50 up to 6-D and 100
above). Jobs run in parallel through Hydra's joblib launcher
(``hydra.launcher.n_jobs``, default 2) with ``threads`` torch threads each
(default 1), so ``n_jobs x threads`` should not exceed the cores.

Everything lands in ``out`` (default ``outputs/bench/<name>``): ``trials.db``
(every trial of every job, in ``bayesopt``'s study tables, plus the runner's
``bench_jobs`` and ``bench_asks`` tables: see ``benchmarks.records``), one Hydra
folder per job (``<optimizer>/<task>/seed<k>``: config and log), and
``report/`` (``benchmarks.report``: markdown, JSON, plots).

Resuming: rerunning the same command skips every job whose study already holds
``budget`` finished trials, and continues the others from their stored trials
(a trial asked but never evaluated, because its process died, is evaluated
first). A job whose stored config differs from the requested one is refused:
use another ``out``.

A suite file lists ``blocks`` of optimizers x tasks (so an expensive optimizer
can run on a subset), ``seeds`` (``n`` for ``0..n-1``, or a list) and an optional
``budget``; ``suite.<key>=...`` overrides a key. In suite mode ``optimizer=``,
``task=`` and ``seed=`` (comma lists) select part of the suite, and any other
override is passed to every job.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

__all__ = ["ReportCallback", "expand_suite", "load_suite", "main", "run_job", "run_suite"]

log = logging.getLogger(__name__)

CONFIG_NAME = "benchmark"
#: Keys of the command line that only the suite front end reads.
SUITE_KEYS = ("suite", "dry_run")
#: Keys a suite's blocks sweep over; given on the command line they select.
SWEEP_KEYS = ("optimizer", "task", "seed")


# --------------------------------------------------------------------------- one job


def storage_url(cfg: Mapping[str, Any]) -> str:
    """The database of a run: ``cfg.storage``, else ``sqlite:///<out>/trials.db``."""
    if cfg.get("storage"):
        return str(cfg["storage"])
    out = Path(str(cfg["out"])).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{out / 'trials.db'}"


def run_job(cfg: DictConfig) -> dict[str, Any]:
    """Run (or resume, or skip) one job: an optimizer on a task with a seed.

    Args:
        cfg: The composed ``conf/benchmark.yaml`` config: ``optimizer`` (a node
            with ``_target_`` and ``name``), ``task``, ``seed``, ``budget``,
            ``n_initial``, ``threads``, ``out``, ``storage``.

    Returns:
        ``study``, ``status`` (``complete`` or ``skipped``), ``n_finished``,
        ``best_value``, ``wall_seconds`` (of this call).

    Raises:
        ValueError: The job exists in the database with a different config.
    """
    from hydra.utils import instantiate

    from bayesopt.storage.sql import SQLStorage
    from benchmarks.harness import configure_threads
    from benchmarks.records import RunRecords, study_name

    configure_threads(int(cfg.get("threads") or 1))
    _warm_up()  # once per worker process, outside the job's clock
    start = time.perf_counter()
    task = instantiate(cfg.task)
    opt_name = str(cfg.optimizer.name)
    seed = int(cfg.seed)
    budget = int(cfg.budget) if cfg.get("budget") is not None else int(task.budget)
    if budget < 1:
        raise ValueError(f"budget: expected a positive number of evaluations, got {budget}.")
    study = study_name(opt_name, task.name, seed)
    config = {
        "optimizer": OmegaConf.to_container(cfg.optimizer, resolve=True),
        "task": OmegaConf.to_container(cfg.task, resolve=True),
        "n_initial": cfg.get("n_initial"),
    }
    storage = SQLStorage(storage_url(cfg))
    records = RunRecords(storage.engine)
    previous = records.job(study)
    if previous is not None and previous.config != config:
        storage.dispose()
        raise ValueError(
            f"job {study!r} is stored in {storage.url} with another config "
            f"({_diff(previous.config, config)}); use another out= folder."
        )
    stored = storage.load_study(study)
    done = 0 if stored is None else _n_finished(storage.trials(stored.id))
    if done >= budget:
        if previous is not None and previous.status != "complete":
            records.finish_job(study, status="complete", wall_seconds=0.0)
        storage.dispose()
        log.info("%s: skipped (%d finished trials stored, budget %d)", study, done, budget)
        return {"study": study, "status": "skipped", "n_finished": done}

    try:
        opt = instantiate(
            cfg.optimizer,
            task.space,
            direction=task.direction,
            seed=seed,
            storage=storage,
            study=study,
            n_initial=cfg.get("n_initial"),
            _convert_="all",
        )
    except BaseException:
        storage.dispose()
        raise
    records.start_job(
        study,
        optimizer=opt_name,
        task=task.name,
        seed=seed,
        budget=budget,
        n_initial=getattr(opt, "n_initial", None),
        info=task_info(task),
        config=config,
    )
    try:
        done = _optimize(opt, task, budget, study, records)
    except BaseException as exc:
        records.finish_job(
            study,
            status="failed",
            wall_seconds=time.perf_counter() - start,
            error=f"{type(exc).__name__}: {exc}",
        )
        opt.close()
        raise
    best = _best(opt.trials, task.direction)
    wall = time.perf_counter() - start
    records.finish_job(study, status="complete", wall_seconds=wall)
    opt.close()
    regret = task.regret(best) if best is not None else math.nan
    log.info(
        "%s: %d trials, best %.6g%s, %.1f s",
        study,
        done,
        math.nan if best is None else best,
        f" (regret {regret:.3g})" if math.isfinite(regret) else "",
        wall,
    )
    return {
        "study": study,
        "status": "complete",
        "n_finished": done,
        "best_value": best,
        "wall_seconds": wall,
    }


#: Imported once per worker before any ask is timed, so that no optimizer's first
#: model-based ask pays for lazy imports (botorch's, Optuna's GP modules).
WARM_UP_MODULES = (
    "scipy.optimize",
    "botorch",
    "gpytorch",
    "bayesopt",
    "surrogates",
    "acquisitions",
    "optuna",
    "optuna._gp.gp",
    "optuna._gp.acqf",
    "optuna._gp.optim_mixed",
)


def _warm_up() -> None:
    import importlib

    for module in WARM_UP_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def _optimize(opt: Any, task: Any, budget: int, study: str, records: Any) -> int:
    """Evaluate orphaned trials, then ask/evaluate/tell to ``budget`` finished trials."""
    from bayesopt.trial import TrialState

    trials = opt.trials
    for trial in trials:  # asked by a process that died before telling: evaluate it now
        if trial.state is TrialState.RUNNING:
            log.info("%s: evaluating trial %d left running by an earlier run", study, trial.id)
            _evaluate(opt, task, trial)
    done = _n_finished(opt.trials)
    while done < budget:
        wall, cpu = time.perf_counter(), time.process_time()
        trial = opt.ask()
        ask_cpu = time.process_time() - cpu
        ask_wall = time.perf_counter() - wall
        eval_seconds = _evaluate(opt, task, trial)
        records.add_ask(study, trial.id, ask_wall, ask_cpu, eval_seconds)
        done += 1
    return done


def _evaluate(opt: Any, task: Any, trial: Any) -> float:
    """Evaluate a trial and tell (or fail) it; returns the evaluation's seconds."""
    t0 = time.perf_counter()
    try:
        value = float(task(dict(trial.params)))
    except Exception as exc:  # noqa: BLE001 -- a failed evaluation is data
        log.warning("trial %d failed: %s: %s", trial.id, type(exc).__name__, exc)
        opt.fail(trial, f"{type(exc).__name__}: {exc}")
        return time.perf_counter() - t0
    seconds = time.perf_counter() - t0
    opt.tell(trial, value)
    return seconds


def _n_finished(trials: Sequence[Any]) -> int:
    return sum(t.state.is_finished for t in trials)


def _best(trials: Sequence[Any], direction: str) -> float | None:
    values = [t.value for t in trials if t.value is not None and math.isfinite(t.value)]
    if not values:
        return None
    return min(values) if direction == "minimize" else max(values)


def task_info(task: Any) -> dict[str, Any]:
    """What the report needs to know about a task, as JSON-ready data."""
    optimum = getattr(task, "optimal_value", None)
    return {
        "direction": task.direction,
        "optimal_value": None if optimum is None else float(optimum),
        "optimum_is_exact": bool(getattr(task, "optimum_is_exact", True)),
        "dim": len(task.space),
        "noise_std": float(getattr(task, "noise_std", 0.0) or 0.0),
        "eval_seconds": float(getattr(task, "eval_seconds", 0.0) or 0.0),
    }


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: stored {old.get(k)!r} vs requested {new.get(k)!r}" for k in keys)


@hydra.main(config_path="pkg://conf", config_name=CONFIG_NAME, version_base="1.3")
def hydra_main(cfg: DictConfig) -> float | None:
    """Hydra entry point of one job (``run_job``); returns the best value for sweepers."""
    return run_job(cfg).get("best_value")


class ReportCallback(Callback):
    """Writes ``<out>/report`` when a multirun ends (unless ``report=false``)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:  # noqa: D102
        if not config.get("report", True):
            return
        from benchmarks.report import write_report

        write_report(Path(str(config.out)), storage=storage_url(config))


# --------------------------------------------------------------------------- suites


def load_suite(name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """A suite config: ``conf/suite/<name>.yaml`` (or a YAML path) plus overrides.

    Args:
        name: A suite name, or the path of a suite YAML file.
        overrides: Dotlist overrides of its keys, e.g. ``["seeds=2", "budget=10"]``.

    Returns:
        The suite config with ``name``, ``seeds``, ``budget`` and ``blocks``.

    Raises:
        ValueError: An unknown suite, or a malformed one.
    """
    from importlib.resources import files

    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        suite = OmegaConf.load(path)
        label = path.stem
    else:
        resource = files("conf").joinpath("suite", f"{name}.yaml")
        if not resource.is_file():
            known = sorted(
                p.name[: -len(".yaml")]
                for p in files("conf").joinpath("suite").iterdir()
                if p.name.endswith(".yaml")
            )
            raise ValueError(f"suite: unknown suite {name!r}; expected one of {known}.")
        suite = OmegaConf.create(resource.read_text())
        label = name
    suite = OmegaConf.merge(suite, OmegaConf.from_dotlist(list(overrides)))
    if "name" not in suite:
        suite.name = label
    blocks = suite.get("blocks")
    if not blocks or not all(b.get("optimizers") and b.get("tasks") for b in blocks):
        raise ValueError(
            f"suite {label!r}: expected `blocks`, a list of {{optimizers: [...], tasks: [...]}}, "
            f"got {blocks!r}."
        )
    return suite


def _seeds(value: Any) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return list(range(value))
    return [int(s) for s in value]


def expand_suite(
    suite: Mapping[str, Any], select: Mapping[str, Sequence[str]] | None = None
) -> list[dict[str, Any]]:
    """The blocks of a suite as ``{optimizers, tasks, seeds, budget}``, optionally narrowed.

    Args:
        suite: A suite config (see ``load_suite``).
        select: ``{"optimizer" | "task" | "seed": allowed values}``; a block keeps
            only the allowed ones (and is dropped when nothing is left).

    Returns:
        One dict per non-empty block, in the suite's order.
    """
    select = select or {}
    out = []
    for block in suite["blocks"]:
        seeds = _seeds(block.get("seeds", suite.get("seeds", 1)))
        entry = {
            "optimizers": [str(o) for o in block["optimizers"]],
            "tasks": [str(t) for t in block["tasks"]],
            "seeds": seeds,
            "budget": block.get("budget", suite.get("budget")),
        }
        for key, field in (("optimizer", "optimizers"), ("task", "tasks"), ("seed", "seeds")):
            if key in select:
                allowed = {str(v) for v in select[key]}
                entry[field] = [v for v in entry[field] if str(v) in allowed]
        if entry["optimizers"] and entry["tasks"] and entry["seeds"]:
            out.append(entry)
    return out


def block_overrides(block: Mapping[str, Any], passthrough: Sequence[str]) -> list[str]:
    """The Hydra multirun overrides of one block (the user's ``passthrough`` last)."""
    keys = {o.split("=", 1)[0].lstrip("+~") for o in passthrough}
    args = [
        f"optimizer={','.join(block['optimizers'])}",
        f"task={','.join(block['tasks'])}",
        f"seed={','.join(str(s) for s in block['seeds'])}",
    ]
    if block.get("budget") is not None and "budget" not in keys:
        args.append(f"budget={int(block['budget'])}")
    return args + list(passthrough)


def run_suite(name: str, overrides: Sequence[str] = (), *, dry_run: bool = False) -> Path:
    """Run every block of a suite as a Hydra multirun, then write the report.

    Args:
        name: The suite (see ``load_suite``).
        overrides: Command-line overrides: ``suite.<key>=...`` edit the suite;
            ``optimizer=``/``task=``/``seed=`` (comma lists) select part of it;
            anything else is passed to every job (``budget=10``,
            ``hydra.launcher.n_jobs=1``, ``out=...``).
        dry_run: Print the commands and the number of jobs; run nothing.

    Returns:
        The run folder (``out``).

    Raises:
        SystemExit: With code 1 when a block failed (after the report is written).
    """
    suite_overrides, select, passthrough = [], {}, []
    for arg in overrides:
        key, _, value = arg.partition("=")
        if key.startswith("suite."):
            suite_overrides.append(f"{key[len('suite.') :]}={value}")
        elif key in SWEEP_KEYS:
            select[key] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            passthrough.append(arg)
    suite = load_suite(name, suite_overrides)
    keys = {o.split("=", 1)[0] for o in passthrough}
    if "name" not in keys:
        passthrough.append(f"name={suite.name}")
    out_arg = next((o.split("=", 1)[1] for o in passthrough if o.startswith("out=")), None)
    out = Path(out_arg or f"outputs/bench/{suite.name}").resolve()
    passthrough = [o for o in passthrough if not o.startswith("out=")] + [f"out={out}"]
    storage = next((o.split("=", 1)[1] for o in passthrough if o.startswith("storage=")), None)
    blocks = expand_suite(suite, select)
    n_jobs = sum(len(b["optimizers"]) * len(b["tasks"]) * len(b["seeds"]) for b in blocks)
    print(f"suite {suite.name}: {len(blocks)} block(s), {n_jobs} jobs -> {out}", flush=True)
    failed = []
    for i, block in enumerate(blocks):
        args = ["-m", *block_overrides(block, passthrough), "report=false"]
        print(f"[{i + 1}/{len(blocks)}] python -m benchmarks.runner {' '.join(args)}", flush=True)
        if dry_run:
            continue
        try:
            with _argv(args):
                hydra_main()
        except SystemExit as exc:  # Hydra reports a failed job and exits
            if exc.code not in (0, None):
                failed.append(i + 1)
    if not dry_run:
        from benchmarks.report import write_report

        write_report(out, storage=storage or f"sqlite:///{out / 'trials.db'}")
    if failed:
        print(f"block(s) {failed} had failed jobs; see the job logs under {out}", flush=True)
        raise SystemExit(1)
    return out


@contextlib.contextmanager
def _argv(args: Sequence[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = [saved[0] if saved else "benchmarks.runner", *args]
    try:
        yield
    finally:
        sys.argv = saved


def main(argv: Sequence[str] | None = None) -> Path | None:
    """Command line: ``suite=<name> [...]`` runs a suite, anything else is plain Hydra."""
    args = list(sys.argv[1:] if argv is None else argv)
    suite = next((a.split("=", 1)[1] for a in args if a.startswith("suite=")), None)
    if suite is None:
        with _argv(args):
            hydra_main()
        return None
    dry_run = any(a in ("dry_run=true", "dry_run=True") for a in args)
    rest = [a for a in args if a.split("=", 1)[0] not in SUITE_KEYS]
    return run_suite(suite, rest, dry_run=dry_run)


if __name__ == "__main__":
    main()
