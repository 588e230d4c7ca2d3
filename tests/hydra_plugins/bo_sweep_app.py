"""A tiny Hydra app for the sweeper tests: a quadratic with injectable failures.

``f(x, y) = (x - 0.3)^2 + (y - 0.6)^2`` on the unit square. With ``fail=raise``
or ``fail=return_nan`` every job with ``x > fail_above`` raises or returns NaN;
``record`` appends one JSON line per job start (job number, pid, parameters,
and the values of ``s`` and ``opt`` exactly as received); ``crash_at=k`` kills
the whole sweeper process (``os._exit``) when job ``k`` starts for the first
time (a marker file remembers it), as a power cut would. Job ``segv_at``
segfaults its process every time, job ``exit_at`` calls
``sys.exit(exit_code)``, job ``hang_at`` sleeps for ever (only the first time
with ``hang_once``; ``<record>.hung`` marks that it started). When ``opt`` is a
mapping with ``_target_``, the app instantiates it (as apps do with a swept node).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


def objective(cfg: DictConfig) -> object:
    """The task function: see the module docstring."""
    job = HydraConfig.get().job.num
    received = {k: OmegaConf.to_container(cfg, resolve=True).get(k) for k in ("s", "opt")}
    if cfg.record:
        with open(cfg.record, "a") as fh:
            line = {"job": job, "pid": os.getpid(), "x": cfg.x, "y": cfg.y, **received}
            fh.write(json.dumps(line) + "\n")
    if cfg.crash_at == job:
        marker = Path(cfg.record).with_suffix(".crashed")
        if not marker.exists():
            marker.touch()
            os._exit(3)
    if cfg.segv_at == job:
        os.kill(os.getpid(), signal.SIGSEGV)
    if cfg.exit_at == job:
        sys.exit(cfg.exit_code)
    if cfg.hang_at == job:
        marker = Path(cfg.record).with_suffix(".hung")
        if not (cfg.hang_once and marker.exists()):
            marker.touch()
            time.sleep(10**6)
    if OmegaConf.is_dict(cfg.opt) and "_target_" in cfg.opt:
        hydra.utils.instantiate(cfg.opt)
    if cfg.x > cfg.fail_above:
        if cfg.fail == "raise":
            raise RuntimeError(f"diverged at x={cfg.x}")
        if cfg.fail == "return_nan":
            return float("nan")
    value = (cfg.x - 0.3) ** 2 + (cfg.y - 0.6) ** 2
    if cfg.as_dict:
        return {"loss": value, "accuracy": 1.0 - value}
    return value


@hydra.main(version_base="1.3", config_path="conf", config_name="bo_sweep_app")
def main(cfg: DictConfig) -> object:
    """Hydra entry point."""
    return objective(cfg)


if __name__ == "__main__":
    main()
