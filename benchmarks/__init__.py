"""Benchmark tasks: synthetic functions, chaotic systems, HPO and text tasks.

Tasks are instantiated by the CLI through Hydra ``_target_`` entries in
``conf/task/``; ``TASKS`` maps registry names to task classes.
"""

from __future__ import annotations

# Imported for their registrations: hpo_, hpobench_, fcnet_, nb201_ families; text tasks;
# chaotic-system tasks (numpy only; dysts is imported on use).
from benchmarks import chaos, chaos_dysts, esn, hpo, tabular, text_tasks  # noqa: F401
from benchmarks.base import TASKS, Task, make_task, register
from benchmarks.synthetic import Branin, Hartmann6

__all__ = ["TASKS", "Branin", "Hartmann6", "Task", "make_task", "register"]
