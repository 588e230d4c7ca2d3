"""Guarded imports of optional dependencies: the error names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message says which extra provides it."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise ``MissingExtraError`` naming ``bayesopt[extra]``.

    Args:
        module: Dotted module name, e.g. ``"optuna"`` or ``"ray.tune"``.
        extra: The extra of the ``bayesopt`` distribution that installs it.
        purpose: What needs it, e.g. ``"bayesopt.integrations.optuna"``.

    Returns:
        The imported module.

    Raises:
        MissingExtraError: the module (or one of its own imports) is missing.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs {module!r}, which is not installed ({exc}); install it with "
            f'`pip install "bayesopt[{extra}]"`.',
            name=module,
        ) from exc
