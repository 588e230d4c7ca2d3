"""Surrogates: one module per model, all on the ``fit(X, Y, columns, seed)`` contract."""

from surrogates.base import (
    Column,
    FitError,
    Surrogate,
    available_surrogates,
    get_surrogate,
    register_surrogate,
)

__all__ = [
    "Column",
    "FitError",
    "Surrogate",
    "available_surrogates",
    "get_surrogate",
    "register_surrogate",
]
