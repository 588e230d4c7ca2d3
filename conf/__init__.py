"""Hydra configs of ``python -m bayesopt``, read as ``pkg://conf`` (works from a wheel)."""
