"""The surrogate x acquisition matrix: the table itself, and every registered pair end to end.

Every registered surrogate meets every registered acquisition through
``bayesopt.Optimizer`` on a mixed space (2 floats, 1 integer, 1 categorical of
3 levels): supported pairs propose in-bounds, correctly typed points with
trials pending (two asks without a tell, then a batch of 2 whose points are
distinct); unsupported pairs are refused with the matrix's reason. Each
surrogate is fitted once (the data do not change between the asks) and the
acquisition optimizer's budget is tiny, so the whole grid stays inside CI time.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
import torch
from botorch.models import MixedSingleTaskGP, ModelListGP, SingleTaskGP
from botorch.models.ensemble import EnsembleModel

from acquisitions import (
    AcquisitionContext,
    UnsupportedModelError,
    available_acquisitions,
    get_acquisition,
)
from acquisitions.matrix import (
    KINDS,
    MATRIX,
    MatrixChecked,
    model_kind,
    render_markdown,
    support,
)
from acquisitions.optimize import OptimizerSettings
from bayesopt import Categorical, Float, Int, Optimizer
from bayesopt.proposal import domain_of
from surrogates import Surrogate, available_surrogates

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "surrogates"))
from surrogate_tables import make  # noqa: E402  (the shared small-budget options)

SPACE = {
    "x": Float(0.0, 1.0),
    "y": Float(-2.0, 3.0),
    "n": Int(1, 4),
    "c": Categorical(["a", "b", "c"]),
}
SETTINGS = OptimizerSettings(num_restarts=2, raw_samples=32, maxiter=20)
#: small Monte Carlo / discretization budgets (the defaults are tested in each module)
ACQ_OPTIONS = {
    "qlognei": {"num_samples": 32},
    "qnei": {"num_samples": 32},
    "logei": {"num_samples": 32},
    "ei": {"num_samples": 32},
    "ucb": {"num_samples": 32},
    "decision_nei": {"num_samples": 16},
    "ts": {"num_inducing": 128},
    "kg": {"num_fantasies": 8, "num_discrete": 64},
}


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # small linear algebra; threads only oversubscribe shared cores
    yield
    torch.set_num_threads(previous)


def objective(p):
    shift = {"a": 0.0, "b": 0.4, "c": -0.3}[p["c"]]
    return (p["x"] - 0.3) ** 2 + 0.1 * (p["y"] - 1.0) ** 2 + 0.05 * p["n"] + shift


class FitOnce(Surrogate):
    """A registered surrogate whose fits are cached by their data (shared across studies)."""

    def __init__(self, inner: Surrogate) -> None:
        super().__init__(device=inner.device)
        self.inner = inner
        self.name = inner.name
        self.includes_observation_noise = inner.includes_observation_noise
        self.is_ensemble = inner.is_ensemble
        self.models: dict[bytes, object] = {}

    def fit(self, X, Y, columns, seed, init=None, refit=True):
        key = X.cpu().numpy().tobytes() + Y.cpu().numpy().tobytes()
        if key not in self.models:
            self.models[key] = self.inner.fit(X, Y, columns, seed)
        return self.models[key]


_FITTED: dict[str, FitOnce] = {}


def _surrogate(name: str) -> FitOnce:
    if name not in _FITTED:
        _FITTED[name] = FitOnce(make(name))
    return _FITTED[name]


def _check_params(params):
    assert set(params) == set(SPACE)
    assert type(params["x"]) is float and 0.0 <= params["x"] <= 1.0
    assert type(params["y"]) is float and -2.0 <= params["y"] <= 3.0
    assert type(params["n"]) is int and 1 <= params["n"] <= 4
    assert params["c"] in ("a", "b", "c")


def _key(params):
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def _study(surrogate: str, acquisition: str) -> Optimizer:
    opt = Optimizer(
        SPACE,
        surrogate=_surrogate(surrogate),
        acquisition=acquisition,
        acquisition_options=ACQ_OPTIONS.get(acquisition, {}),
        seed=0,
        n_initial=5,
        optimizer_settings=SETTINGS,
        heartbeat_interval=None,
    )
    for _ in range(5):
        t = opt.ask()
        opt.tell(t, objective(t.params))
    return opt


def test_every_acquisition_has_a_row_over_every_kind():
    assert set(available_acquisitions()) <= set(MATRIX)
    for acq, row in MATRIX.items():
        assert set(row) == set(KINDS), acq
        for kind, cell in row.items():
            assert cell.ok or cell.reason, (acq, kind)


def test_kinds_come_from_model_traits():
    X = torch.rand(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    Y = X.sum(-1, keepdim=True)
    assert model_kind(SingleTaskGP(X, Y)) == "gp_rff"
    Xc = X.clone()
    Xc[:, 2] = torch.tensor([0, 1, 2, 0, 1, 2], dtype=torch.float64)
    assert model_kind(MixedSingleTaskGP(Xc, Y, cat_dims=[2])) == "gp"
    assert model_kind(ModelListGP(SingleTaskGP(X, Y))) == "other"

    class Members(EnsembleModel):
        def forward(self, X):
            return X.sum(-1, keepdim=True).unsqueeze(-3)

    assert model_kind(Members()) == "ensemble"
    assert not support("kg", "ensemble").ok and "fantasize" in support("kg", "ensemble").reason
    assert support("ts", "other").finite_only


def test_markdown_rendering():
    text = render_markdown({"gp": ["gp_rff", "gp"], "ensemble": "ensemble"}, ["ei", "ts", "kg"])
    lines = text.splitlines()
    assert lines[0] == "| surrogate | ei | ts | kg |"
    assert lines[2] == "| gp | yes | yes | yes |"
    assert lines[3] == "| ensemble | yes | yes | no [1] |"
    assert lines[5].startswith("[1] kg on sample-based ensemble") and "fantasize" in lines[5]
    mixed = render_markdown({"auto": ["gp", "ensemble"]}, ["kg"])
    assert "| auto | partly [1] |" in mixed


PAIRS = [(s, a) for s in available_surrogates() for a in available_acquisitions()]


@pytest.mark.parametrize(("surrogate", "acquisition"), PAIRS)
def test_pair_end_to_end(surrogate, acquisition):
    opt = _study(surrogate, acquisition)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first = opt.ask()  # fits the surrogate (once per surrogate, cached)
        model = next(iter(_surrogate(surrogate).models.values()))
        cell = support(acquisition, model)
        if not cell.ok:
            # refused at the first ask: the proposal falls back with the reason (the
            # matrix's own words where the acquisition's check_model is the matrix's)
            acq = get_acquisition(acquisition)
            reason = cell.reason if isinstance(acq, MatrixChecked) else "UnsupportedModelError"
            assert first.attrs["source"] == "fallback", first.attrs
            assert reason in first.attrs["fallback"]
            assert any(reason in str(w.message) for w in caught)
            # ... and the acquisition refuses the model at construction
            X = torch.rand(3, 4, dtype=torch.float64)
            ctx = AcquisitionContext(X, X[:, :1], None, 0.0, domain_of(opt.space), seed=0)
            with pytest.raises(UnsupportedModelError):
                acq.build(model, ctx)
            return
        second = opt.ask()  # the first is pending
        batch = opt.ask_batch(2)  # two pending
        for t in (first, second, *batch):
            assert t.attrs["source"] == "model", t.attrs
            assert t.attrs["acquisition"] == acquisition
            _check_params(t.params)
        assert _key(batch[0].params) != _key(batch[1].params)
    finally:
        opt.close()
