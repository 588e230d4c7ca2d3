"""bayesopt: Bayesian optimization with pluggable surrogates.

The public API (see DESIGN.md)::

    from bayesopt import Optimizer, Float, Int, Categorical, Text, TrialState, minimize

``Optimizer`` and ``minimize`` import torch/botorch on first use, so importing
the package (e.g. for ``--help`` or Hydra plugin discovery) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bayesopt.space import Categorical, Float, Int, Space, Text
from bayesopt.trial import Trial, TrialState

if TYPE_CHECKING:
    from bayesopt.minimize import minimize
    from bayesopt.optimizer import Optimizer

__all__ = [
    "Categorical",
    "Float",
    "Int",
    "Optimizer",
    "Space",
    "Text",
    "Trial",
    "TrialState",
    "minimize",
]
__version__ = "0.1.0"

_LAZY = {"Optimizer": "bayesopt.optimizer", "minimize": "bayesopt.minimize"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bayesopt' has no attribute {name!r}")
