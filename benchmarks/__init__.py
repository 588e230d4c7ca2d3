"""Benchmark tasks: synthetic functions (and, later, chaotic systems, HPO, text).

Tasks are instantiated by the CLI through Hydra ``_target_`` entries in
``conf/task/``; ``TASKS`` maps registry names to task classes.
"""

from __future__ import annotations

from benchmarks import hpo, tabular, text_tasks  # noqa: F401  (registers hpo_, hpobench_, fcnet_, nb201_ families; text tasks)
from benchmarks.base import TASKS, Task, make_task, register
from benchmarks.synthetic import Branin, Hartmann6

__all__ = ["TASKS", "Branin", "Hartmann6", "Task", "make_task", "register"]
