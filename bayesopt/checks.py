"""Argument checks of the ``Optimizer``: each error names the argument and the value."""

from __future__ import annotations

import numbers
from typing import Any

__all__ = ["MAX_SEED", "heartbeats", "n_initial", "seed", "value"]

#: Seeds are stored as signed 64-bit integers.
MAX_SEED = 2**63


def seed(value: Any) -> int | None:
    """A study seed as a Python int in ``[0, 2**63)`` (numpy integers accepted), or None.

    Raises:
        TypeError: not an integer.
        ValueError: outside the range a database stores.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"seed: expected an integer or None, got {value!r}.")
    if not 0 <= int(value) < MAX_SEED:
        raise ValueError(f"seed: expected an integer in [0, 2**63), got {value!r}.")
    return int(value)


def value(told: Any) -> float:
    """A told value as a float (may be non-finite).

    Raises:
        TypeError: not a real number (a one-element tensor or array is one).
    """
    if hasattr(told, "item") and hasattr(told, "numel") and told.numel() == 1:
        told = told.item()  # a one-element tensor
    if isinstance(told, bool) or not isinstance(told, numbers.Real):
        raise TypeError(
            f"value: expected a real number, got {told!r} of type {type(told).__name__}."
        )
    return float(told)


def n_initial(count: Any) -> None:
    """``None`` or a non-negative integer.

    Raises:
        ValueError: anything else.
    """
    if count is not None and (
        isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0
    ):
        raise ValueError(f"n_initial: expected a non-negative integer or None, got {count!r}.")


def heartbeats(heartbeat_interval: Any, grace_period: Any) -> None:
    """Positive seconds (or None), with ``grace_period >= 2 * heartbeat_interval``.

    A shorter grace period marks live trials stale between two heartbeats.

    Raises:
        ValueError: naming the argument and the value.
    """
    for label, v in (("heartbeat_interval", heartbeat_interval), ("grace_period", grace_period)):
        if v is not None and not (isinstance(v, numbers.Real) and v > 0):
            raise ValueError(f"{label}: expected a positive number of seconds or None, got {v!r}.")
    if (
        grace_period is not None
        and heartbeat_interval is not None
        and grace_period < 2 * heartbeat_interval
    ):
        raise ValueError(
            f"grace_period: {grace_period!r} s is less than twice heartbeat_interval="
            f"{heartbeat_interval!r} s, so live trials would be marked stale between two "
            "heartbeats; raise grace_period or lower heartbeat_interval."
        )
