"""Every surrogate through the whole ask/tell loop on one torch device.

The contract tests check that each surrogate's ``device`` option puts its
model and posterior there (``tests/surrogates/test_contract.py``, CUDA only);
this script runs the full loop -- Sobol design, fit, qLogNEI, the
acquisition optimizer, ``predict`` -- with ``surrogate_options={"device": ...}``
on Branin and prints, per surrogate, the regret, the source of the last
proposal (``model`` unless something fell back), the median seconds of a
model-based ask and the device the posterior came back on.

Run from the repository root::

    .venv/bin/python -m benchmarks.device_smoke --device cuda
    .venv/bin/python -m benchmarks.device_smoke --device cpu --surrogates gp dkl --budget 12

Exit status 1 when a surrogate raises, falls back on its last proposal or
returns its posterior on another device.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "run_surrogate"]

#: Surrogates left out by default (``hmc_bnn``: ~10 s per ask on a CPU).
SLOW = ("hmc_bnn",)


def run_surrogate(name: str, device: str, budget: int, seed: int = 0) -> dict[str, Any]:
    """``budget`` evaluations of Branin with ``name`` on ``device``; a summary dict.

    Returns:
        ``surrogate``, ``regret``, ``last_source``, ``model_ask_seconds`` (median),
        ``predict_device`` and ``ok``.
    """
    import torch

    from bayesopt import Optimizer
    from benchmarks import make_task

    task = make_task("branin")
    opt = Optimizer(
        dict(task.space),
        surrogate=name,
        surrogate_options={"device": device},
        direction=task.direction,
        seed=seed,
    )
    seconds, sources = [], []
    try:
        for _ in range(budget):
            start = time.perf_counter()
            trial = opt.ask()
            elapsed = time.perf_counter() - start
            sources.append(trial.attrs.get("source"))
            if sources[-1] == "model":
                seconds.append(elapsed)
            opt.tell(trial, float(task(trial.params)))
        model = opt._fit(opt.trials)  # the fitted model behind predict()
        point = torch.tensor([[0.5, 0.5]], dtype=torch.float64, device=device)
        with torch.no_grad():
            post_device = model.posterior(point).mean.device.type
        mean, std = opt.predict([opt.best_trial.params])
        regret = float(task.regret(opt.best_trial.value))
    finally:
        opt.close()
    ok = (
        sources[-1] == "model"
        and post_device == torch.device(device).type
        and bool(std[0] >= 0 and mean[0] == mean[0])
    )
    return {
        "surrogate": name,
        "regret": regret,
        "last_source": sources[-1],
        "model_ask_seconds": statistics.median(seconds) if seconds else float("nan"),
        "predict_device": post_device,
        "ok": ok,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the surrogates, print one line each; 0 if all passed, else 1."""
    from surrogates import available_surrogates

    names = [n for n in available_surrogates() if n not in SLOW]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="torch device (default: cuda)")
    parser.add_argument("--surrogates", nargs="+", default=names, choices=available_surrogates())
    parser.add_argument("--budget", type=int, default=16, help="evaluations (default: 16)")
    args = parser.parse_args(argv)
    if args.budget < 12:
        parser.error(f"--budget must be at least 12 (past the initial design), got {args.budget}")
    failed = []
    for name in args.surrogates:
        try:
            r = run_surrogate(name, args.device, args.budget)
        except Exception as exc:  # report every surrogate, then fail
            print(f"{name:<14} FAILED: {type(exc).__name__}: {exc}", flush=True)
            failed.append(name)
            continue
        print(
            f"{name:<14} regret {r['regret']:.3e}  last proposal from {r['last_source']:<8} "
            f"model ask {r['model_ask_seconds']:.2f} s  posterior on {r['predict_device']}"
            f"  {'ok' if r['ok'] else 'NOT OK'}",
            flush=True,
        )
        if not r["ok"]:
            failed.append(name)
    print(f"{len(args.surrogates) - len(failed)}/{len(args.surrogates)} ok on {args.device}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
