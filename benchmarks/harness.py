"""Pieces every benchmark script shares: threads per process, parallel options, output.

The comparison scripts (``compare_optuna``, ``compare_surrogates``,
``compare_acquisitions``, ``ask_latency``) run seeds in worker processes that
must not oversubscribe the cores, take the same ``--workers``/``--threads``/
``--output`` options, write their results as one JSON document and print
them as a fixed-width ``text_table``. Long
runs keep a ``RunLog`` of their finished runs so that a rerun (or a run on
another machine, its log appended) skips what is done.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "Column",
    "RunLog",
    "add_parallel_arguments",
    "configure_threads",
    "default_threads",
    "host_info",
    "text_table",
    "write_document",
]

#: One column of a ``text_table``: its title, ``"<"`` (left) or ``">"`` (right)
#: alignment, and the function that renders a row's cell.
Column = tuple[str, str, Callable[[Mapping[str, Any]], str]]


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


def host_info() -> dict[str, Any]:
    """Where a run ran: machine name, CPU count, torch and Python versions.

    Seconds measured on different machines are not comparable; records carry this.
    """
    import torch

    return {
        "node": platform.node(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__.split("+")[0],
        "python": platform.python_version(),
    }


class RunLog:
    """Finished runs as JSON lines, appended as each run ends and read back on a rerun.

    A run is identified by ``key_fields`` of its record (task, method, seed,
    budget, options, ...); a rerun of the same command loads the records whose
    keys it asks for instead of running them again. Logs from other machines
    can be appended to the file (``cat other.jsonl >> log``); a line cut off
    by a killed process is skipped with a warning.

    Args:
        path: The ``.jsonl`` file (created with its folder on the first append).
        key_fields: Record fields that identify a run.
    """

    def __init__(self, path: Path, key_fields: tuple[str, ...]) -> None:
        self.path = Path(path)
        self.key_fields = key_fields

    def key(self, record: Mapping[str, Any]) -> str:
        """The identity of a run: its key fields as canonical JSON."""
        return json.dumps([record.get(f) for f in self.key_fields], sort_keys=True)

    def load(self) -> dict[str, dict[str, Any]]:
        """Key -> record of every complete line (the last wins where a key repeats)."""
        out: dict[str, dict[str, Any]] = {}
        if not self.path.exists():
            return out
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                print(f"warning: {self.path}:{number} is not a complete record; ignored")
                continue
            out[self.key(record)] = record
        return out

    def append(self, record: Mapping[str, Any]) -> None:
        """Add one finished run (one line, flushed at once)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()


def text_table(
    columns: Sequence[Column], rows: Sequence[Mapping[str, Any]], title: str | None = None
) -> str:
    """Rows as a fixed-width text table: a header, a rule, one line per row.

    Each column is as wide as its title or its widest cell, so that no cell
    pushes the columns after it out of line.

    Args:
        columns: ``(title, align, cell)`` per column; ``cell(row)`` renders a cell.
        rows: The rows, in order.
        title: An optional line above the header.

    Returns:
        The table, lines joined by newlines (no trailing newline).
    """
    cells = [[cell(row) for _, _, cell in columns] for row in rows]
    titles = [head for head, _, _ in columns]
    widths = [max([len(t)] + [len(texts[i]) for texts in cells]) for i, t in enumerate(titles)]
    aligns = [align for _, align, _ in columns]

    def line(texts: Sequence[str]) -> str:
        return " ".join(f"{t:{a}{w}}" for t, a, w in zip(texts, aligns, widths)).rstrip()

    header = line(titles)
    lines = ([title] if title else []) + [header, "-" * len(header)]
    return "\n".join(lines + [line(texts) for texts in cells])
