"""Vector fields of chaotic flows and a batched fixed-step RK4 integrator, in numpy.

The chaotic-system tasks (``benchmarks.chaos``, ``benchmarks.esn``) integrate
many short trajectories per evaluation. Every vector field here takes a batch
of states ``x`` of shape ``k x n`` (``k`` trajectories of an ``n``-dimensional
system) and a parameter vector ``theta`` of shape ``p`` and returns ``dx/dt``
of shape ``k x n``; ``rk4`` advances the whole batch at once, so twenty
shooting windows cost about as much as one.

A fixed step makes the result a deterministic function of the inputs (no
adaptive step control reacting to the parameters), and the observed data of
the tasks are generated with the same integrator and step, so the true
parameters reproduce noise-free observations exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["VectorField", "lorenz63", "lorenz96", "rk4", "rossler"]

VectorField = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``f(x, theta) -> dx/dt`` for states ``x`` of shape ``k x n`` and parameters ``theta``."""


def lorenz63(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Lorenz (1963): ``x' = s (y - x)``, ``y' = x (r - z) - y``, ``z' = x y - b z``.

    Args:
        x: States, ``k x 3``.
        theta: ``(sigma, rho, beta)``; the chaotic classic is ``(10, 28, 8/3)``.

    Returns:
        ``dx/dt``, ``k x 3``.
    """
    sigma, rho, beta = theta
    a, b, c = x[:, 0], x[:, 1], x[:, 2]
    return np.stack((sigma * (b - a), a * (rho - c) - b, a * b - beta * c), axis=1)


def rossler(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Rossler (1976): ``x' = -y - z``, ``y' = x + a y``, ``z' = b + z (x - c)``.

    Args:
        x: States, ``k x 3``.
        theta: ``(a, b, c)``; the chaotic classic is ``(0.2, 0.2, 5.7)``.

    Returns:
        ``dx/dt``, ``k x 3``.
    """
    pa, pb, pc = theta
    a, b, c = x[:, 0], x[:, 1], x[:, 2]
    return np.stack((-b - c, a + pa * b, pb + c * (a - pc)), axis=1)


def lorenz96(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Lorenz (1996) with per-site forcing: ``x_i' = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F_i``.

    Indices are cyclic. Chaotic for a uniform forcing ``F = 8`` from ``n = 5`` on.

    Args:
        x: States, ``k x n``.
        theta: Forcing ``F``, shape ``n`` (or a scalar for a uniform forcing).

    Returns:
        ``dx/dt``, ``k x n``.
    """
    return (np.roll(x, -1, axis=1) - np.roll(x, 2, axis=1)) * np.roll(x, 1, axis=1) - x + theta


def rk4(
    f: VectorField,
    x0: np.ndarray,
    theta: np.ndarray,
    dt: float,
    n_steps: int,
    every: int = 1,
    t0: float | np.ndarray | None = None,
) -> np.ndarray:
    """Integrate a batch of states with the classical fourth-order Runge-Kutta scheme.

    Overflow in a diverging trajectory is not an error: its states become
    ``inf``/``nan`` and the caller decides what that costs.

    Args:
        f: The vector field.
        x0: Initial states, ``k x n``.
        theta: Parameters passed to ``f`` unchanged.
        dt: Step size.
        n_steps: Number of steps (a multiple of ``every``).
        every: Record the state after every ``every`` steps.
        t0: For a non-autonomous field: the start time (a scalar or one per
            state, shape ``k``); ``f`` is then called as ``f(x, theta, t)``
            with ``t`` of that shape. ``None``: ``f(x, theta)``.

    Returns:
        The recorded states, ``n_steps // every x k x n`` (the initial state
        excluded), in the dtype of ``x0`` promoted to float.
    """
    if n_steps % every:
        raise ValueError(f"rk4: n_steps={n_steps} is not a multiple of every={every}.")
    x = np.array(x0, dtype=float)
    out = np.empty((n_steps // every, *x.shape))
    half = 0.5 * dt
    sixth = dt / 6.0
    if t0 is not None:
        start = np.asarray(t0, dtype=float)

        def g(y: np.ndarray, theta: np.ndarray, t: np.ndarray) -> np.ndarray:
            return f(y, theta, t)  # type: ignore[call-arg]

    with np.errstate(all="ignore"):
        for step in range(1, n_steps + 1):
            if t0 is None:
                k1 = f(x, theta)
                k2 = f(x + half * k1, theta)
                k3 = f(x + half * k2, theta)
                k4 = f(x + dt * k3, theta)
            else:
                t = start + (step - 1) * dt
                k1 = g(x, theta, t)
                k2 = g(x + half * k1, theta, t + half)
                k3 = g(x + half * k2, theta, t + half)
                k4 = g(x + dt * k3, theta, t + dt)
            x = x + sixth * (k1 + 2.0 * (k2 + k3) + k4)
            if step % every == 0:
                out[step // every - 1] = x
    return out
