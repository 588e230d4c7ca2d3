"""Pieces every benchmark script shares: threads per process, parallel options, output.

The comparison scripts (``compare_optuna``, ``compare_surrogates``,
``compare_acquisitions``, ``ask_latency``) run seeds in worker processes that
must not oversubscribe the cores, take the same ``--workers``/``--threads``/
``--output`` options, and write their results as one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["add_parallel_arguments", "configure_threads", "default_threads", "write_document"]


def configure_threads(threads: int) -> int:
    """Set the torch (and BLAS/OpenMP) thread count of this process.

    Args:
        threads: Intra-op threads for torch; also exported as ``OMP_NUM_THREADS``,
            ``MKL_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS`` for libraries that
            start their pools later.

    Returns:
        The thread count torch reports afterwards.
    """
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    return torch.get_num_threads()


def default_threads(workers: int) -> int:
    """Torch threads per process so that ``workers`` processes share the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def add_parallel_arguments(
    parser: argparse.ArgumentParser, default_output: Path, output_help: str = "JSON output path"
) -> None:
    """Add ``--workers``, ``--threads`` and ``--output`` to a benchmark's parser."""
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="parallel processes; runs are distributed over them (default: 1)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per process (default: cpu_count // workers)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=default_output,
        help=f"{output_help} (default: {default_output})",
    )


def write_document(document: dict[str, Any], path: Path) -> dict[str, Any]:
    """Write a results document as JSON (creating its folder); returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1))
    print(f"wrote {path}")
    return document
