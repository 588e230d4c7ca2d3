"""Shared by the surrogate suites: the per-surrogate option tables and toy data.

Imported by the test modules as ``surrogate_tables`` (pytest puts this folder on
``sys.path``); a plain module rather than a conftest so the tables can be imported.

``FAST_OPTIONS`` are the constructor options the contract suite uses: small
budgets (fewer samples, members, epochs) that keep every registered surrogate's
contract checks inside about a minute on one core. ``CALIBRATION_OPTIONS`` are
the options of the calibration suite: each surrogate's defaults wherever CI
time allows. A registered name missing from a table uses its defaults.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from surrogates import Column, available_surrogates, get_surrogate

#: name -> constructor options of the contract suite (small budgets).
FAST_OPTIONS: dict[str, dict[str, Any]] = {
    "gp": {},
    "ibnn": {},
    "dkl": {"max_steps": 150},
    "ensemble": {"epochs": 300},
    "hmc_bnn": {
        "num_chains": 2,
        "num_warmup": 20,
        "num_samples": 10,
        "max_tree_depth": 4,
        "map_steps": 200,
    },
    "auto": {"candidates": ["gp", "ibnn"], "folds": 2},
    "neural_bandit": {"epochs": 300, "lr": 3e-3},
}

#: name -> constructor options of the calibration suite: the defaults (reduced
#: hmc_bnn budgets were measured to change its calibration; see test_calibration.py).
CALIBRATION_OPTIONS: dict[str, dict[str, Any]] = {
    "gp": {},
    "ibnn": {},
    "dkl": {},
    "ensemble": {},
    "hmc_bnn": {},
    "auto": {},
    "neural_bandit": {},
}

#: name -> what the surrogate does with ``init`` (an earlier fit's ``last_state``):
#: ``"reuses"``: it keeps a state, and ``refit=False`` conditions the stored
#: hyperparameters on the new data without optimizing (``last_refit`` False);
#: ``"initializes"``: it keeps a state and starts every fit from it (it always
#: refits: hmc_bnn's step size and noise scale); ``None``: stateless, ``init`` and
#: ``refit`` are ignored and ``last_state`` is None (every fit trains from scratch).
#: The contract suite checks each entry; a registered surrogate must have one.
WARM_STARTS: dict[str, str | None] = {
    "gp": "reuses",
    "ibnn": "reuses",
    "auto": "reuses",  # the choice and its member's state (auto's FAST_OPTIONS: gp, ibnn)
    "hmc_bnn": "initializes",
    "dkl": None,
    "ensemble": None,
    "neural_bandit": None,
}

#: Every registered surrogate (the suites are parametrized over these).
SURROGATES = available_surrogates()


def make(name: str, table: dict[str, dict[str, Any]] | None = None, **extra: Any):
    """A surrogate by registry name, with its options in ``table`` (default ``FAST_OPTIONS``).

    Args:
        name: A registered surrogate name.
        table: ``name -> options``; ``None`` means ``FAST_OPTIONS``.
        **extra: Options on top of the table's (e.g. ``device``).
    """
    options = dict((FAST_OPTIONS if table is None else table).get(name, {}))
    options.update(extra)
    return get_surrogate(name, **options)


def continuous_columns(d: int) -> list[Column]:
    """``d`` continuous column descriptions ``x0 .. x{d-1}``."""
    return [Column(f"x{i}", "continuous") for i in range(d)]


def toy_data(n: int = 16, d: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n x d`` uniform inputs and a smooth ``n x 1`` outcome far from zero mean.

    ``y = 50 (sin(2 pi x0) + x1^2 - 0.5 sum_{i>=2} x_i) + 300``.
    """
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    y = torch.sin(2 * math.pi * X[:, 0])
    if d > 1:
        y = y + X[:, 1] ** 2
    if d > 2:
        y = y - 0.5 * X[:, 2:].sum(-1)
    return X, (50.0 * y + 300.0).unsqueeze(-1)
