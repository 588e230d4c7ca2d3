"""The command line: one Bayesian optimization of a benchmark task, configured by Hydra.

::

    python -m bayesopt task=branin surrogate=gp acquisition=qlognei n_trials=40 seed=0
    python -m bayesopt -m seed=0,1,2 n_trials=12          # one run per seed
    python -m bayesopt storage=sqlite:///branin.db study=b0 n_trials=60   # resumable

The configs live in the ``conf`` package (``pkg://conf``, so a wheel install
finds them too). The task is built with ``hydra.utils.instantiate(cfg.task)``
from its ``_target_``; this module never imports ``benchmarks``. A task is any
callable ``params -> float`` with ``space``, ``direction`` and ``name``
attributes, and optionally ``regret(value)`` (see ``benchmarks.base.Task``).

A run asks, evaluates and tells until the study holds ``n_trials`` finished
(COMPLETE or FAILED) trials, so rerunning against the same storage resumes to
the same total. It then writes into the Hydra run directory: the SQLite study
``study.db`` (unless ``storage`` names another), ``trials.csv``,
``results.json`` and ``convergence.png``. Heavy libraries are imported only
when a run starts, so ``--help`` stays fast.
"""

from __future__ import annotations

import logging
import math
import numbers
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from bayesopt.trial import TrialState, best_of

__all__ = ["main", "optimize", "run"]

log = logging.getLogger(__name__)

INTERRUPTED_EXIT_CODE = 130  # the shell's code for SIGINT


@hydra.main(config_path="pkg://conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point: run one optimization into the Hydra run directory.

    Returns:
        The best value found (``None`` when no trial completed), for sweepers.
    """
    from hydra.core.hydra_config import HydraConfig

    return run(cfg, HydraConfig.get().runtime.output_dir)


def run(
    cfg: DictConfig | Mapping[str, Any], output_dir: str | Path, *, task: Any = None
) -> float | None:
    """Run one optimization described by a composed config and write its report.

    Args:
        cfg: The composed config (see ``conf/config.yaml``).
        output_dir: Directory for ``study.db``, ``trials.csv``,
            ``results.json`` and ``convergence.png``.
        task: A ready task object; ``None`` instantiates ``cfg.task``.

    Returns:
        The best value found, or ``None`` when no trial completed.

    Raises:
        TypeError: ``n_trials``, ``batch_size``, ``seed`` or ``n_initial`` is not
            an integer (``2.5``, ``"abc"``, ``true``); nothing is stored.
        ValueError: one of them is out of range (``n_trials < 0``,
            ``batch_size < 1``, ``seed`` outside ``[0, 2**63)``); nothing is stored.
        SystemExit: with code 130 after a KeyboardInterrupt, once the outputs
            are written (this also stops a multirun).
    """
    from hydra.utils import instantiate

    from bayesopt.optimizer import Optimizer
    from bayesopt.storage.engine import mask_url

    # every count is checked before anything is built or stored
    n_trials = _integer(cfg, "n_trials", low=0)
    batch_size = _integer(cfg, "batch_size", low=1, default=1)
    seed = _integer(cfg, "seed", low=0, high=2**63, high_text="2**63", default=None)
    n_initial = _integer(cfg, "n_initial", low=0, default=None)
    start = time.perf_counter()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if task is None:
        task = instantiate(cfg["task"])
    surrogate, surrogate_options = _registry_entry(cfg["surrogate"], "surrogate")
    acquisition, acquisition_options = _registry_entry(cfg["acquisition"], "acquisition")
    storage = cfg.get("storage") or f"sqlite:///{(out / 'study.db').resolve()}"
    study = str(cfg.get("study") or getattr(task, "name", None) or "default")
    opt = Optimizer(
        task.space,
        surrogate=surrogate,
        acquisition=acquisition,
        direction=task.direction,
        seed=seed,
        storage=storage,
        study=study,
        n_initial=n_initial,
        surrogate_options=surrogate_options,
        acquisition_options=acquisition_options,
    )
    try:
        ask_seconds, interrupted = optimize(opt, task, n_trials, batch_size=batch_size)
        results = write_report(
            out,
            opt,
            task,
            meta={
                "task": getattr(task, "name", type(task).__name__),
                "surrogate": surrogate,
                "surrogate_options": surrogate_options,
                "acquisition": acquisition,
                "acquisition_options": acquisition_options,
                "seed": opt.seed,
                "n_trials": n_trials,
                "batch_size": batch_size,
                "storage": mask_url(storage),
                "study": study,
            },
            n_initial=opt.n_initial,
            ask_seconds=ask_seconds,
            total_seconds=time.perf_counter() - start,
            interrupted=interrupted,
        )
    finally:
        opt.close()
    _print_summary(results, out)
    if interrupted:
        sys.exit(INTERRUPTED_EXIT_CODE)
    return results["best_value"]


def optimize(
    opt: Any, task: Any, n_trials: int, *, batch_size: int = 1, progress: bool = True
) -> tuple[dict[int, float], bool]:
    """Run ``bayesopt.minimize.run_loop`` on a task, with its regret in the progress bar.

    Returns:
        ``({trial id: seconds its ask took}, interrupted)``.
    """
    from bayesopt.minimize import run_loop

    regret = getattr(task, "regret", None)

    def postfix(best: Any) -> dict[str, str]:
        r = regret(best.value) if regret is not None else math.nan
        return {"regret": f"{r:.3g}"} if math.isfinite(r) else {}

    result = run_loop(
        opt,
        task,
        n_trials,
        batch_size=batch_size,
        progress=progress,
        desc=str(getattr(task, "name", "trials")),
        postfix=postfix,
        max_failure_rate=1.0,
    )
    return result.ask_seconds, result.interrupted


def write_report(
    out: Path,
    opt: Any,
    task: Any,
    *,
    meta: Mapping[str, Any],
    n_initial: int | None,
    ask_seconds: Mapping[int, float],
    total_seconds: float,
    interrupted: bool = False,
) -> dict[str, Any]:
    """Write ``trials.csv``, ``results.json`` and ``convergence.png`` into ``out``.

    Returns:
        The results dict written to ``results.json``.
    """
    from bayesopt import report
    from bayesopt.fallbacks import summarize

    trials = opt.trials
    direction = task.direction
    regret = getattr(task, "regret", None)
    names = list(task.space)
    rows = report.trial_rows(
        trials, names, direction=direction, regret=regret, ask_seconds=ask_seconds
    )
    report.write_trials_csv(rows, out / "trials.csv")

    finished = report.finished_trials(trials)
    best_curve = report.best_so_far([t.value for t in finished], direction)
    regret_curve = (
        report.regret_curve(trials, regret, direction)
        if regret is not None
        else [None] * len(finished)
    )
    best = best_of(trials, direction)
    simple_regret = regret_curve[-1] if regret_curve else None
    results = {
        **meta,
        "direction": direction,
        "optimal_value": getattr(task, "optimal_value", None),
        "noise_std": getattr(task, "noise_std", None),
        "n_initial": n_initial,
        "n_finished": len(finished),
        "n_complete": sum(t.state is TrialState.COMPLETE for t in finished),
        "n_failed": sum(t.state is TrialState.FAILED for t in finished),
        "best_trial_id": None if best is None else best.id,
        "best_value": None if best is None else best.value,
        "best_params": None if best is None else dict(best.params),
        "simple_regret": simple_regret,
        "regret_curve": regret_curve,
        "best_value_curve": best_curve,
        "ask_seconds": {str(k): v for k, v in sorted(ask_seconds.items())},
        "total_ask_seconds": sum(ask_seconds.values()),
        "total_seconds": total_seconds,
        "interrupted": interrupted,
        "fallbacks": summarize(trials).to_json(),
        "output_dir": str(out.resolve()),
    }
    report.write_results_json(results, out / "results.json")

    has_regret = any(r is not None for r in regret_curve)
    report.plot_convergence(
        {str(meta.get("surrogate", "bayesopt")): regret_curve if has_regret else best_curve},
        out / "convergence.png",
        n_initial=n_initial,
        log_y=has_regret,
        ylabel="best-so-far simple regret" if has_regret else "best-so-far value",
        title=f"{meta.get('task')} / {meta.get('surrogate')} + {meta.get('acquisition')}"
        f" (seed {meta.get('seed')})",
    )
    return results


_MISSING = object()


def _integer(
    cfg: Mapping[str, Any],
    key: str,
    *,
    low: int,
    high: int | None = None,
    high_text: str | None = None,
    default: Any = _MISSING,
) -> int | None:
    """The integer ``cfg[key]`` in ``[low, high)``, refused with the key and value otherwise.

    Hydra parses ``n_trials=40`` as an int, ``2.5`` as a float and ``abc`` as a
    string; only an integer (or an integral float such as ``1e3``) is accepted,
    never truncated. A missing or null key gives ``default`` (when one is given).
    ``high_text`` is how the message writes ``high`` (``2**63``).

    Raises:
        TypeError: the value is not an integer (a bool, a non-integral float, a string).
        ValueError: the value is outside ``[low, high)``, or missing without a default.
    """
    value = cfg.get(key) if key in cfg else None
    expected = (
        f"an integer >= {low}" if high is None else f"an integer in [{low}, {high_text or high})"
    )
    if value is None:
        if default is _MISSING:
            raise ValueError(f"{key}: expected {expected}, got {value!r}.")
        return default
    if default is None:
        expected += " or null"
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not integral and isinstance(value, float) and value.is_integer():
        integral = True
    if not integral:
        raise TypeError(f"{key}: expected {expected}, got {value!r}.")
    number = int(value)
    if number < low or (high is not None and number >= high):
        raise ValueError(f"{key}: expected {expected}, got {value!r}.")
    return number


def _registry_entry(node: Any, group: str) -> tuple[str, dict[str, Any]]:
    """``(registry name, constructor options)`` of a ``surrogate``/``acquisition`` node.

    The node is ``{name: <registry name>, **options}`` (or just the name).
    """
    if isinstance(node, str):
        return node, {}
    if isinstance(node, Mapping) and isinstance(node.get("name"), str):
        from omegaconf import OmegaConf

        options = (
            OmegaConf.to_container(node, resolve=True)
            if isinstance(node, DictConfig)
            else dict(node)
        )
        name = options.pop("name")
        return name, options
    raise ValueError(f"{group} config: expected a mapping with a `name` key, got {node!r}.")


def _print_summary(results: Mapping[str, Any], out: Path) -> None:
    from bayesopt.fallbacks import FallbackSummary

    message = FallbackSummary(**results["fallbacks"]).message()
    if message:
        print(message)
    if results["best_value"] is None:
        print(f"no trial completed ({results['n_finished']} finished); outputs in {out}")
        return
    print(
        f"best value {results['best_value']:.10g} (trial {results['best_trial_id']}) "
        f"at {results['best_params']}"
    )
    if results["simple_regret"] is not None:
        print(f"simple regret {results['simple_regret']:.6g}")
    print(f"outputs in {out}")
