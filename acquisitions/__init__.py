"""Acquisitions: one module per family, all on the ``build(model, context)`` contract."""

from acquisitions.base import (
    Acquisition,
    AcquisitionContext,
    Domain,
    UnsupportedModelError,
    available_acquisitions,
    get_acquisition,
    register_acquisition,
)

__all__ = [
    "Acquisition",
    "AcquisitionContext",
    "Domain",
    "UnsupportedModelError",
    "available_acquisitions",
    "get_acquisition",
    "register_acquisition",
]
