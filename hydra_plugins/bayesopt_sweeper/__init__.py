"""Hydra sweeper plugin: ``hydra/sweeper=bayesopt`` (Bayesian optimization over a Hydra app).

Hydra imports every public module of this package at each application start,
so nothing here imports torch, botorch or SQLAlchemy; the sweep loop lives in
``_impl`` and is imported when a sweep starts.
"""
