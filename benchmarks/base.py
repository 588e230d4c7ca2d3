"""The benchmark task interface and the task registry.

A task is a callable objective with a search space, a direction, a known
optimum (when there is one) and an observation-noise level. It is what the CLI
instantiates from a ``conf/task/*.yaml`` file (Hydra ``_target_``) and what the
benchmark runners loop over::

    task = Branin()
    value = task({"x1": 0.0, "x2": 5.0})   # the objective, in the user's units
    task.regret(value)                      # simple regret, >= 0

Subclasses set ``space`` in ``__init__`` and implement ``evaluate`` (the
noise-free objective); the base class adds the noise, checks the parameters and
computes regrets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from bayesopt.space import Parameter, Space

__all__ = ["FAMILIES", "TASKS", "Task", "make_task", "register", "register_family", "task_names"]

DIRECTIONS = ("minimize", "maximize")

TASKS: dict[str, type[Task]] = {}
"""Registry of task classes by name (filled by ``@register``)."""


def register(name: str) -> Callable[[type[Task]], type[Task]]:
    """Class decorator that adds a task class to ``TASKS`` under ``name``.

    Args:
        name: The registry name; also becomes the class's default ``name``.

    Returns:
        The decorator, which returns the class unchanged apart from ``name``.
    """

    def decorator(cls: type[Task]) -> type[Task]:
        if name in TASKS and TASKS[name] is not cls:
            raise ValueError(f"task name {name!r} is already registered to {TASKS[name]!r}.")
        cls.name = name
        TASKS[name] = cls
        return cls

    return decorator


FAMILIES: dict[str, type[Task]] = {}
"""Parametrized task families by name prefix (filled by ``@register_family``)."""


def register_family(prefix: str) -> Callable[[type[Task]], type[Task]]:
    """Class decorator for a family of tasks named ``<prefix>_<...>``.

    One class serves many registry names (``hpo_rf_digits``, ``hpo_svm_iris``,
    ...). The class defines two classmethods: ``family_names() -> list[str]``
    (every name it serves) and ``parse_name(name) -> dict`` (the constructor
    arguments a name stands for; ``ValueError`` for a malformed name).

    Args:
        prefix: The name prefix (without the trailing underscore).

    Returns:
        The decorator, which returns the class unchanged.
    """

    def decorator(cls: type[Task]) -> type[Task]:
        if prefix in FAMILIES and FAMILIES[prefix] is not cls:
            raise ValueError(
                f"task family {prefix!r} is already registered to {FAMILIES[prefix]!r}."
            )
        FAMILIES[prefix] = cls
        return cls

    return decorator


def task_names() -> list[str]:
    """Every task name ``make_task`` accepts: ``TASKS`` keys and family members, sorted."""
    names = set(TASKS)
    for cls in FAMILIES.values():
        names.update(cls.family_names())
    return sorted(names)


def make_task(name: str, **kwargs: Any) -> Task:
    """Instantiate a registered task by name.

    Args:
        name: A key of ``TASKS``, or a family member such as ``hpo_rf_digits``
            (``task_names()`` lists them all).
        **kwargs: Constructor arguments (``noise_std``, ``seed``, ...).

    Returns:
        The task instance.
    """
    if name in TASKS:
        return TASKS[name](**kwargs)
    for prefix, cls in FAMILIES.items():
        if name.startswith(prefix + "_"):
            return cls(**cls.parse_name(name), **kwargs)
    families = ", ".join(f"{p}_..." for p in sorted(FAMILIES))
    raise ValueError(
        f"unknown task {name!r}; expected one of {sorted(TASKS)!r} "
        f"or a family member ({families}; see task_names())."
    )


class Task:
    """Base class of a benchmark objective.

    Attributes:
        name: Short identifier (the registry name unless overridden).
        space: ``{parameter name: Float | Int | Categorical}``, in column order.
        direction: ``"minimize"`` or ``"maximize"``.
        optimal_value: The best attainable noise-free value, or ``None`` when
            unknown.
        optimal_params: Known optimizers (a list of parameter dicts), or ``None``.
        optimum_is_exact: ``False`` when ``optimal_value`` is a frozen reference
            (the best value found by a long reference run), not a proven optimum.
        eval_seconds: Typical seconds of one evaluation on one CPU core.
        default_budget: Evaluations a benchmark gives this task; ``None`` means
            the suite rule (``budget``: 50 up to 6 parameters, 100 above).
        noise_std: Standard deviation of the Gaussian noise added by ``__call__``.
        seed: Seed of the noise stream.

    Args:
        noise_std: Observation-noise standard deviation (``>= 0``).
        seed: Seed of the noise generator (``None``: nondeterministic noise).
        name: Overrides the class's ``name`` (for example a config's label).
    """

    name: str = "task"
    direction: str = "minimize"
    optimal_value: float | None = None
    optimal_params: list[dict[str, Any]] | None = None
    optimum_is_exact: bool = True
    eval_seconds: float = 0.0
    default_budget: int | None = None

    def __init__(
        self, noise_std: float = 0.0, seed: int | None = None, name: str | None = None
    ) -> None:
        if isinstance(noise_std, bool) or not isinstance(noise_std, (int, float)):
            raise TypeError(
                f"{type(self).__name__}: noise_std must be a number, got {noise_std!r}."
            )
        if not math.isfinite(noise_std) or noise_std < 0:
            raise ValueError(
                f"{type(self).__name__}: noise_std must be finite and >= 0, got {noise_std!r}."
            )
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"{type(self).__name__}: direction must be one of {DIRECTIONS}, "
                f"got {self.direction!r}."
            )
        if name is not None:
            self.name = str(name)
        self.noise_std = float(noise_std)
        self.seed = seed
        self._rng = None
        self.space: dict[str, Parameter] = {}

    # --- to implement -------------------------------------------------------------
    def evaluate(self, params: Mapping[str, Any]) -> float:
        """The noise-free objective at validated ``params`` (a Python float)."""
        raise NotImplementedError

    # --- the objective ----------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Number of parameters."""
        return len(self.space)

    @property
    def budget(self) -> int:
        """Evaluations per benchmark run: ``default_budget``, else 50 up to 6-D and 100 above."""
        if self.default_budget is not None:
            return int(self.default_budget)
        return 50 if self.dim <= 6 else 100

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``params`` against ``space``; return them as plain Python values.

        Raises:
            TypeError: a value of the wrong type.
            ValueError: missing or unknown names, or a value outside the space.
        """
        return Space(self.space).validate(params)

    def __call__(self, params: Mapping[str, Any]) -> float:
        """Evaluate the objective (with noise when ``noise_std > 0``).

        Args:
            params: ``{name: value}`` for every parameter of ``space``.

        Returns:
            The observed value, a Python float.
        """
        value = float(self.evaluate(self.validate(params)))
        if self.noise_std > 0:
            if self._rng is None:
                import numpy as np

                self._rng = np.random.default_rng(self.seed)
            value += self.noise_std * float(self._rng.standard_normal())
        return value

    def regret(self, value: float) -> float:
        """Simple regret of an observed value: its gap to the optimum, oriented by direction.

        The gap is clipped at zero (noise, or an optimum known only to a few
        digits, may put a value past it). It is ``nan`` when the optimum is
        unknown and ``inf`` for a non-finite value.

        Args:
            value: An objective value.

        Returns:
            ``max(value - optimum, 0)`` when minimizing, ``max(optimum - value, 0)``
            when maximizing.
        """
        if self.optimal_value is None:
            return math.nan
        value = float(value)
        if not math.isfinite(value):
            return math.inf
        gap = value - self.optimal_value
        if self.direction == "maximize":
            gap = -gap
        return max(gap, 0.0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, noise_std={self.noise_std!r})"
