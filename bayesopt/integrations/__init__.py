"""Adapters that plug bayesopt into other tuning frameworks (optional extras).

- ``bayesopt.integrations.optuna.BayesOptSampler``: an Optuna sampler
  (``pip install "bayesopt[optuna]"``).
- ``bayesopt.integrations.ray.BayesOptSearch``: a Ray Tune searcher
  (``pip install "bayesopt[ray]"``).

Nothing here is imported by ``import bayesopt``; each module imports its
framework at import time and, when it is missing, fails with an
``ImportError`` that names the extra to install (``require``).
"""

from bayesopt.integrations._extras import MissingExtraError, require

__all__ = ["MissingExtraError", "require"]
