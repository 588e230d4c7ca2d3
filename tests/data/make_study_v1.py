"""Write ``study_v1.db``: a study stored by bayesopt's schema version 1 (tables without prefix).

The committed ``study_v1.db`` was made from commit 2f3afb1 (the last commit with
schema version 1), checked out in a temporary worktree::

    git worktree add /tmp/v1 2f3afb1
    cd /tmp/v1 && PYTHONPATH=/tmp/v1 /path/to/.venv/bin/python \\
        /path/to/tests/data/make_study_v1.py /path/to/tests/data/study_v1.db
    rm /path/to/tests/data/study_v1.db.asklock   # the proposal lock file, not data
    git worktree remove /tmp/v1

Study ``v1`` (seed 0, 20 Sobol points before any model, so no model is fitted)
holds 8 trials and one queued point:

====  ========  =======================================================
id    state     how
====  ========  =======================================================
0     COMPLETE  ask, tell 1.5
1     COMPLETE  ask, tell 0.25
2     FAILED    ask, fail("diverged")
3     FAILED    ask, tell inf (non-finite value)
4     COMPLETE  add({x: 1.25, lr: 0.01, n: 3, act: None}, -0.5)
5     COMPLETE  ask of an enqueued point {x: -2.5, lr: 0.001, n: 8, act: 1}, tell 3.0
6     RUNNING   ask (never told)
7     COMPLETE  ask, tell 2.0
====  ========  =======================================================

and the queued point {x: 0.5, lr: 0.05, n: 2, act: "tanh"}. Study ``other``
(maximize, one Float) holds one COMPLETE trial. ``tests/bayesopt/test_storage_schema.py``
opens a copy with today's code and checks all of it.
"""

from __future__ import annotations

import sys

from bayesopt import Categorical, Float, Int, Optimizer
from bayesopt.storage.sql import SCHEMA_VERSION

SPACE = {
    "x": Float(-5.0, 5.0),
    "lr": Float(1e-4, 1e-1, log=True),
    "n": Int(1, 8),
    "act": Categorical(["relu", "tanh", 1, None]),
}


def main(path: str) -> None:
    assert SCHEMA_VERSION == 1, "run this with the version-1 code on PYTHONPATH"
    url = f"sqlite:///{path}"
    opt = Optimizer(SPACE, storage=url, study="v1", seed=0, n_initial=20, heartbeat_interval=None)
    opt.tell(opt.ask(), 1.5)
    opt.tell(opt.ask(), 0.25)
    opt.fail(opt.ask(), "diverged")
    opt.tell(opt.ask(), float("inf"))
    opt.add({"x": 1.25, "lr": 0.01, "n": 3, "act": None}, -0.5)
    opt.enqueue({"x": -2.5, "lr": 0.001, "n": 8, "act": 1})
    opt.tell(opt.ask(), 3.0)
    opt.ask()  # left RUNNING
    opt.tell(opt.ask(), 2.0)
    opt.enqueue({"x": 0.5, "lr": 0.05, "n": 2, "act": "tanh"})
    opt.close()
    other = Optimizer(
        {"u": Float(0.0, 1.0)},
        storage=url,
        study="other",
        direction="maximize",
        seed=1,
        n_initial=5,
        heartbeat_interval=None,
    )
    other.tell(other.ask(), 0.75)
    other.close()


if __name__ == "__main__":
    main(sys.argv[1])
