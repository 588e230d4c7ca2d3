"""Shared fixtures: temporary database URLs and a small acquisition-optimizer budget.

Every optimizer in the tests takes an explicit seed; the global torch stream is
also reset before each test, so a test that draws from it (botorch's
``optimize_acqf`` raw samples, shape checks on ``torch.rand``) does not depend
on which tests ran before it.
"""

from __future__ import annotations

import os

import pytest

# One torch thread per process: the tests share two busy cores with other jobs.
os.environ.setdefault("BAYESOPT_TORCH_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests that call torch outside an ask (fits, posteriors) also use one thread."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded_global_stream():
    """The same global torch random stream at the start of every test."""
    import torch

    torch.manual_seed(0)


@pytest.fixture
def sqlite_url(tmp_path):
    """A fresh SQLite database file in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'study.db'}"


@pytest.fixture
def fast_settings():
    """A small acquisition-optimizer budget that keeps model-based asks well under a second."""
    from acquisitions.optimize import OptimizerSettings

    return OptimizerSettings(num_restarts=2, raw_samples=64, maxiter=50)


@pytest.fixture
def make_optimizer(fast_settings):
    """Build optimizers with the fast budget; every one is closed at teardown."""
    from bayesopt import Optimizer

    made = []

    def make(space, **kwargs):
        kwargs.setdefault("optimizer_settings", fast_settings)
        kwargs.setdefault("seed", 0)
        opt = Optimizer(space, **kwargs)
        made.append(opt)
        return opt

    yield make
    for opt in made:
        opt.close()


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server on loopback for the session (see tests/postgres.py).

    Installs Debian's ``postgresql`` when missing; skipped only where that is impossible.
    """
    from postgres import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer.start()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server, request):
    """A fresh, empty PostgreSQL database for one test."""
    return postgres_server.create_database(request.node.name)
