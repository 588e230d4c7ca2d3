"""The end of a sweep: ``optimization_results.yaml`` and the summary log lines.

The storage URL is written and logged through ``SQLStorage.display_url`` (any
password masked), never as given; the model's fallbacks are counted in every
results file and named in the log when there were any.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from bayesopt.trial import TrialState

__all__ = ["RESULTS_FILE", "format_params", "write_results"]

log = logging.getLogger(__name__)

RESULTS_FILE = "optimization_results.yaml"


def format_params(params: Mapping[str, Any]) -> str:
    """``k=v`` pairs of a trial's parameters for a log line."""
    return " ".join(f"{k}={v!r}" for k, v in params.items())


def write_results(
    sweep_dir: Path, opt: Any, *, n_trials: int, fixed_overrides: Sequence[str]
) -> dict[str, Any]:
    """Write ``<sweep_dir>/optimization_results.yaml`` and log the best trial and the fallbacks.

    Args:
        sweep_dir: The sweep directory.
        opt: The sweep's ``bayesopt.Optimizer``.
        n_trials: The ``n_trials`` option of the sweep.
        fixed_overrides: The overrides passed unchanged to every job.

    Returns:
        What was written.
    """
    trials = opt.trials
    best = opt.best_trial
    fallbacks = opt.fallback_summary()
    results = {
        "name": "bayesopt",
        "study": opt.study_name,
        "storage": opt.storage.display_url,
        "direction": opt.direction,
        "best_trial": None if best is None else best.id,
        "best_params": None if best is None else dict(best.params),
        "best_value": None if best is None else best.value,
        "fixed_overrides": list(fixed_overrides),
        "n_complete": sum(t.state is TrialState.COMPLETE for t in trials),
        "n_failed": sum(t.state is TrialState.FAILED for t in trials),
        "n_pruned": sum(t.state is TrialState.PRUNED for t in trials),
        "n_running": sum(t.state is TrialState.RUNNING for t in trials),
        "n_trials": n_trials,
        "fallbacks": fallbacks.to_json(),
    }
    OmegaConf.save(OmegaConf.create(results), Path(sweep_dir) / RESULTS_FILE)
    if best is not None:
        log.info("best trial %d: %s -> %.6g", best.id, format_params(best.params), best.value)
    log.info(
        "model fallbacks: %d of %d model proposals fell back to space-filling points, "
        "%d fits needed a numerical rescue (study %r in %s)",
        fallbacks.n_fallback,
        fallbacks.n_model_phase,
        fallbacks.n_rescued,
        opt.study_name,
        opt.storage.display_url,
    )
    message = fallbacks.message()
    if message is not None:
        log.warning(message)
    return results
