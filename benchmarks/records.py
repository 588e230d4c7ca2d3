"""The benchmark runner's own tables, next to the studies in a suite's database.

Trials live in ``bayesopt``'s study tables (``SQLStorage``), whatever the
optimizer (ours stores them itself; the baselines of ``benchmarks.baselines``
write the same schema). Two more tables hold what a benchmark adds:

``bench_jobs``
    One row per job (optimizer x task x seed), keyed by its study name: the
    optimizer and task labels, seed, budget, initial design size, what the
    report needs about the task (direction, optimum, dimension), the job's
    config, status (``running``, ``complete``, ``failed``) and accumulated wall
    seconds.
``bench_asks``
    One row per asked trial: wall-clock and CPU seconds of the ``ask`` and of
    the evaluation.

Both are created on first use in the same database (SQLite or PostgreSQL).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

__all__ = ["JobRow", "RunRecords", "study_name"]

_meta = sa.MetaData()
_jobs = sa.Table(
    "bench_jobs",
    _meta,
    sa.Column("study", sa.String(512), primary_key=True),
    sa.Column("optimizer", sa.String(128), nullable=False),
    sa.Column("task", sa.String(128), nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("budget", sa.Integer, nullable=False),
    sa.Column("n_initial", sa.Integer, nullable=True),
    sa.Column("info", sa.Text, nullable=False),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("wall_seconds", sa.Double, nullable=False, default=0.0),
    sa.Column("started_at", sa.Double, nullable=True),
    sa.Column("finished_at", sa.Double, nullable=True),
)
_asks = sa.Table(
    "bench_asks",
    _meta,
    sa.Column("study", sa.String(512), primary_key=True),
    sa.Column("trial_id", sa.Integer, primary_key=True),
    sa.Column("ask_seconds", sa.Double, nullable=False),
    sa.Column("ask_cpu_seconds", sa.Double, nullable=False),
    sa.Column("eval_seconds", sa.Double, nullable=True),
)


def study_name(optimizer: str, task: str, seed: int) -> str:
    """The study (and job) name of one run: ``"<optimizer>/<task>/seed<seed>"``."""
    return f"{optimizer}/{task}/seed{int(seed)}"


@dataclass(frozen=True)
class JobRow:
    """A ``bench_jobs`` row (``info`` and ``config`` decoded from JSON)."""

    study: str
    optimizer: str
    task: str
    seed: int
    budget: int
    n_initial: int | None
    info: dict[str, Any]
    config: dict[str, Any]
    status: str
    error: str | None
    wall_seconds: float


class RunRecords:
    """Read and write the runner's tables through a SQLAlchemy engine.

    Args:
        engine: The engine of the suite's database (``SQLStorage.engine``).
    """

    def __init__(self, engine: sa.engine.Engine) -> None:
        self.engine = engine
        # a write transaction from the start (BEGIN IMMEDIATE on SQLite): concurrent jobs
        # creating the tables wait for each other instead of failing with "database is
        # locked" (a deferred transaction that finds another writer cannot wait for it)
        with engine.connect().execution_options(bayesopt_write=True) as conn, conn.begin():
            _meta.create_all(conn)

    # --- jobs -------------------------------------------------------------------
    def job(self, study: str) -> JobRow | None:
        """The row of one job, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(_jobs).where(_jobs.c.study == study)).one_or_none()
        return None if row is None else _job(row)

    def jobs(self) -> list[JobRow]:
        """Every job row, ordered by optimizer, task and seed."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(_jobs).order_by(_jobs.c.optimizer, _jobs.c.task, _jobs.c.seed)
            ).all()
        return [_job(r) for r in rows]

    def start_job(
        self,
        study: str,
        *,
        optimizer: str,
        task: str,
        seed: int,
        budget: int,
        n_initial: int | None,
        info: Mapping[str, Any],
        config: Mapping[str, Any],
    ) -> None:
        """Create or refresh a job's row with status ``running`` (wall seconds are kept)."""
        previous = self.job(study)
        values = {
            "study": study,
            "optimizer": optimizer,
            "task": task,
            "seed": int(seed),
            "budget": int(budget),
            "n_initial": None if n_initial is None else int(n_initial),
            "info": json.dumps(dict(info), allow_nan=False),
            "config": json.dumps(dict(config), allow_nan=False),
            "status": "running",
            "error": None,
            "wall_seconds": previous.wall_seconds if previous else 0.0,
            "started_at": time.time(),
            "finished_at": None,
        }
        with self.engine.begin() as conn:
            conn.execute(_jobs.delete().where(_jobs.c.study == study))
            conn.execute(_jobs.insert().values(**values))

    def finish_job(
        self, study: str, *, status: str, wall_seconds: float, error: str | None = None
    ) -> None:
        """Set a job's final status and add ``wall_seconds`` to its total."""
        with self.engine.begin() as conn:
            conn.execute(
                _jobs.update()
                .where(_jobs.c.study == study)
                .values(
                    status=status,
                    error=error,
                    wall_seconds=_jobs.c.wall_seconds + float(wall_seconds),
                    finished_at=time.time(),
                )
            )

    # --- asks -------------------------------------------------------------------
    def add_ask(
        self,
        study: str,
        trial_id: int,
        ask_seconds: float,
        ask_cpu_seconds: float,
        eval_seconds: float | None = None,
    ) -> None:
        """Record the timings of one asked trial (replacing an earlier record)."""
        with self.engine.begin() as conn:
            conn.execute(
                _asks.delete().where((_asks.c.study == study) & (_asks.c.trial_id == trial_id))
            )
            conn.execute(
                _asks.insert().values(
                    study=study,
                    trial_id=int(trial_id),
                    ask_seconds=float(ask_seconds),
                    ask_cpu_seconds=float(ask_cpu_seconds),
                    eval_seconds=None if eval_seconds is None else float(eval_seconds),
                )
            )

    def asks(self, study: str) -> dict[int, tuple[float, float, float | None]]:
        """``{trial id: (ask seconds, ask CPU seconds, eval seconds)}`` of one job."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(_asks).where(_asks.c.study == study)).all()
        return {int(r.trial_id): (r.ask_seconds, r.ask_cpu_seconds, r.eval_seconds) for r in rows}


def _job(row: Any) -> JobRow:
    return JobRow(
        study=row.study,
        optimizer=row.optimizer,
        task=row.task,
        seed=int(row.seed),
        budget=int(row.budget),
        n_initial=None if row.n_initial is None else int(row.n_initial),
        info=json.loads(row.info),
        config=json.loads(row.config),
        status=row.status,
        error=row.error,
        wall_seconds=float(row.wall_seconds or 0.0),
    )
