"""From a snapshot of trials to new points: initial design, model, acquisition.

Every proposal runs under its own random stream derived from (study seed,
trial id), inside ``torch.random.fork_rng``, so the same seed and the same
tells give the same asks, and libraries that use global random state (botorch's
restarts) cannot leak randomness between proposals.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayesopt.space import Space
from bayesopt.trial import Trial, TrialState

__all__ = ["Proposal", "derive_seed", "propose", "sobol_point"]

logger = logging.getLogger(__name__)

#: The model is used once this many trials have completed (and the initial design is done).
MIN_COMPLETE_FOR_MODEL = 2


def derive_seed(study_seed: int, trial_id: int, salt: int = 0) -> int:
    """A 31-bit seed for the random stream of one trial of one study.

    Every bit of the study seed counts (seeds that differ only above bit 48 gave
    identical runs before): seeds below ``2**48`` keep the streams they always had.
    """
    seed = int(study_seed)
    entropy = seed & 0xFFFFFFFFFFFF if 0 <= seed < 2**48 else seed % 2**64
    ss = np.random.SeedSequence([entropy, int(trial_id), int(salt)])
    return int(ss.generate_state(1, dtype=np.uint32)[0] >> 1)


#: ``derive_seed`` salt of the Sobol design's scrambling seed for study seeds >= 2**31.
SOBOL_SALT = 0x5B01


def sobol_seed(study_seed: int) -> int:
    """The scrambling seed of a study's Sobol design (seeds below ``2**31`` as they are)."""
    seed = int(study_seed)
    return seed if 0 <= seed < 2**31 else derive_seed(seed, 0, salt=SOBOL_SALT)


#: Torch intra-op threads used while fitting and optimizing. Small dense linear
#: algebra gains little from threads, and several workers on one machine
#: oversubscribe the cores badly (measured: 30x slower GP fits with 2 threads
#: per process on 2 busy cores). ``BAYESOPT_TORCH_THREADS`` overrides it.
TORCH_THREADS = int(os.environ.get("BAYESOPT_TORCH_THREADS", "1"))


@contextlib.contextmanager
def seeded(seed: int, threads: int | None = None) -> Iterator[None]:
    """Run model code under ``seed`` and a torch thread count, leaving the caller's state alone.

    Routine numerical warnings of linear_operator (Cholesky jitter) are silenced.

    Args:
        seed: Seed of the block's torch random stream.
        threads: Torch intra-op threads inside the block (default ``TORCH_THREADS``).
    """
    import torch
    from linear_operator.utils.warnings import NumericalWarning

    previous = torch.get_num_threads()
    torch.set_num_threads(threads or TORCH_THREADS)
    try:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            # "added jitter of 1e-08 to the diagonal" is routine with close points;
            # real failures surface as exceptions and are handled by the fallbacks.
            warnings.simplefilter("ignore", NumericalWarning)
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(previous)


def sobol_point(space: Space, study_seed: int, index: int) -> dict[str, Any]:
    """Point ``index`` of the study's scrambled Sobol sequence, decoded."""
    from torch.quasirandom import SobolEngine

    engine = SobolEngine(len(space), scramble=True, seed=sobol_seed(study_seed))
    if index:
        engine.fast_forward(index)
    row = engine.draw(1, dtype=_float64())[0].tolist()
    return space.from_unit(row)


def _float64() -> Any:
    import torch

    return torch.float64


@dataclass
class Proposal:
    """Proposed points and how they were made."""

    params: list[dict[str, Any]]
    attrs: list[dict[str, Any]] = field(default_factory=list)


def default_n_initial(space: Space) -> int:
    """Initial design size: ``max(4, d // 2 + 1)``, at most 20 (``d`` parameters).

    Small designs leave more of the budget to the model. Measured with
    ``benchmarks/compare_optuna.py`` (10 seeds): on Hartmann-6 at 60 evaluations the
    median regret was 3.1e-3 with 9 Sobol points, 3.4e-3 with 7 and 1.2e-3 with 4
    (9 of 10 seeds in the global basin); on Branin at 30, 1.9e-2 with 5 and 5e-3 with 4.
    """
    return int(min(20, max(4, len(space) // 2 + 1)))


def _oriented(value: float, direction: str) -> float:
    return -value if direction == "minimize" else value


#: ``fail_reason`` values that say nothing about the point itself (the worker
#: died or was stopped): such trials stay pending but get no imputed value.
NOT_THE_POINTS_FAULT = ("stale", "interrupted")


def failed_at_point(trial: Trial) -> bool:
    """Whether a FAILED trial failed because of its point (not a dead or stopped worker)."""
    reason = str(trial.attrs.get("fail_reason", ""))
    return trial.state is TrialState.FAILED and not reason.startswith(NOT_THE_POINTS_FAULT)


def training_data(
    space: Space, trials: Sequence[Trial], direction: str, impute_failures: bool = True
) -> tuple[Any, Any, Any]:
    """Encoded ``X`` (``n x d``), oriented and bounded ``Y`` (``n x 1``) and pending ``p x d``.

    Pending points are the RUNNING and FAILED trials: a failed point stays
    pending for good. Pending points alone only discourage the exact points
    already tried, so with ``impute_failures`` a point whose evaluation failed
    also enters the training data with the worst observed outcome: a region
    that always fails then looks bad to the model and is not proposed again.

    ``Y`` is winsorized (``surrogates.outcomes.winsorize``), so every surrogate
    can fit any finite values: an extremely bad value (an "infeasible" penalty
    such as ``sys.float_info.max``) takes the worst ordinary outcome, an
    extremely good one (``-1e300`` when minimizing) is lowered far out and stays
    the best. Everything that uses the model -- the surrogate, the
    acquisition's baseline and incumbent, ``recommend`` and ``predict`` --
    sees these bounded outcomes; the told values stay in the study as they are.
    """
    import torch

    from surrogates.outcomes import winsorize

    done = [t for t in trials if t.state is TrialState.COMPLETE]
    pending = [t for t in trials if t.state in (TrialState.RUNNING, TrialState.FAILED)]
    ys = [_oriented(t.value, direction) for t in done]
    if impute_failures and ys:
        failed = [t for t in pending if failed_at_point(t)]
        done = done + failed
        ys = ys + [min(ys)] * len(failed)
    dtype = torch.float64
    X = torch.tensor([space.encode(t.params) for t in done], dtype=dtype).reshape(-1, len(space))
    Y, clipped = winsorize(torch.tensor(ys, dtype=dtype).reshape(-1, 1))
    if clipped.n_clipped:
        logger.info(
            "outcomes bounded to [%g, %g]: %d raised, %d lowered",
            clipped.low,
            clipped.high,
            clipped.n_low,
            clipped.n_high,
        )
    P = torch.tensor([space.encode(t.params) for t in pending], dtype=dtype).reshape(
        -1, len(space)
    )
    return X, Y, P


def _embedding_tensor(param: Any) -> Any:
    """A Text parameter's ``m x e`` embeddings as a float64 CPU tensor, made once per parameter.

    The same tensor object is handed to every fit, so surrogates may cache what
    they derive from it (``surrogates.features`` caches its PCA by identity).
    """
    import torch

    if "tensor" not in param.cache:
        param.cache["tensor"] = torch.tensor(param.embeddings(), dtype=torch.float64)
    return param.cache["tensor"]


def columns_of(space: Space) -> list[Any]:
    """The surrogates' column descriptions of a space (Text columns carry their embeddings)."""
    from surrogates.base import Column

    cats = space.categorical_columns()
    texts = space.text_columns()
    grids = space.discrete_columns()
    cols = []
    for i, name in enumerate(space.names):
        if i in cats:
            cols.append(Column(name, "categorical", n_categories=cats[i]))
        elif i in texts:
            embedding = _embedding_tensor(space.params[name])
            cols.append(Column(name, "text", n_categories=texts[i], embedding=embedding))
        elif i in grids:
            cols.append(Column(name, "integer", values=tuple(grids[i])))
        else:
            cols.append(Column(name, "continuous"))
    return cols


def domain_of(space: Space, device: Any = "cpu") -> Any:
    """The acquisition optimizer's domain of a space (bounds on ``device``).

    Categorical and Text columns are both unordered codes to the optimizer
    (``Domain.categorical``); a Text column's many codes select its strategy
    (``acquisitions.optimize.choose_strategy``).
    """
    import torch

    from acquisitions.base import Domain

    bounds = torch.tensor(space.bounds(), dtype=torch.float64, device=device).T
    codes = {**space.categorical_columns(), **space.text_columns()}
    cats = {i: [float(c) for c in range(codes[i])] for i in sorted(codes)}
    return Domain(bounds=bounds, discrete=space.discrete_columns(), categorical=cats)


#: Trial attribute holding the surrogate's ``last_state`` after a model-based proposal,
#: and the number of training points of the fit that produced it.
STATE_ATTR = "model_state"
FIT_SIZE_ATTR = "model_fit_n"
#: Hyperparameters are refitted at every proposal below this many training points;
#: above it, once the data grew by ``REFIT_FRACTION`` since the last fit (in between,
#: the stored hyperparameters are reused and the model only conditions on the new
#: points). Both depend only on stored trials, so every worker decides alike.
REFIT_ALWAYS_BELOW = 100
REFIT_FRACTION = 0.02


def latest_state(trials: Sequence[Trial], surrogate: Any) -> tuple[dict[str, Any] | None, int]:
    """``(state, fit size)`` stored with the newest model-based trial of this surrogate."""
    for t in reversed(trials):
        if t.attrs.get("surrogate") == surrogate.name and STATE_ATTR in t.attrs:
            return t.attrs[STATE_ATTR], int(t.attrs.get(FIT_SIZE_ATTR, 0))
    return None, 0


def refit_due(n: int, fitted_at: int) -> bool:
    """Whether hyperparameters fitted on ``fitted_at`` points must be refitted for ``n``."""
    return n < REFIT_ALWAYS_BELOW or n - fitted_at >= max(1, math.ceil(REFIT_FRACTION * n))


def fit_model(
    space: Space, X: Any, Y: Any, surrogate: Any, seed: int, trials: Sequence[Trial] = ()
) -> tuple[Any, dict]:
    """Fit ``surrogate`` to ``X`` (``n x d``) and ``Y`` (``n x 1``); returns ``(model, attrs)``.

    The state stored with the newest model-based trial is the warm start (and,
    between scheduled refits, is reused as is: see ``refit_due``).
    """
    init, fitted_at = latest_state(trials, surrogate)
    refit = init is None or refit_due(X.shape[0], fitted_at)
    t0 = time.perf_counter()
    model = surrogate.fit(X, Y, columns_of(space), seed, init=init, refit=refit)
    attrs = {"surrogate": surrogate.name, "fit_seconds": round(time.perf_counter() - t0, 4)}
    used = getattr(surrogate, "last_used", None)  # a surrogate that delegates (``auto``)
    if used is not None:
        attrs["surrogate_used"] = used
    fallback = getattr(surrogate, "last_fallback", None)
    if fallback:
        attrs["fallback"] = fallback
    if surrogate.last_state is not None:
        attrs[STATE_ATTR] = surrogate.last_state
        attrs[FIT_SIZE_ATTR] = X.shape[0] if surrogate.last_refit else fitted_at
    return model, attrs


def propose(
    space: Space,
    trials: Sequence[Trial],
    *,
    first_id: int,
    q: int,
    study_seed: int,
    n_initial: int,
    direction: str,
    surrogate: Any,
    acquisition: Any,
    optimizer_settings: Any = None,
) -> Proposal:
    """Propose ``q`` points for trials ``first_id .. first_id + q - 1``.

    Sobol point ``k`` goes to trial ``k`` while ``k < n_initial`` (or while
    fewer than ``MIN_COMPLETE_FOR_MODEL`` trials have completed); then the
    surrogate and the acquisition propose jointly. If the model fails, the
    proposal falls back to Sobol points with a warning and records why.
    """
    n_complete = sum(t.state is TrialState.COMPLETE for t in trials)
    sobol_ids = [
        first_id + k
        for k in range(q)
        if first_id + k < n_initial or n_complete < MIN_COMPLETE_FOR_MODEL
    ]
    if len(sobol_ids) == q:
        return Proposal(
            params=[sobol_point(space, study_seed, i) for i in sobol_ids],
            attrs=[{"source": "sobol"} for _ in sobol_ids],
        )
    seed = derive_seed(study_seed, first_id)
    # Text embeddings (computed once, then cached) outside the fallback and the
    # single-threaded block: the forward passes use the process's torch threads, and
    # a missing embedder (EmbedderUnavailableError) is a configuration error to raise
    space.embeddings()
    try:
        with seeded(seed):
            params, attrs = _model_proposal(
                space, trials, q, seed, direction, surrogate, acquisition, optimizer_settings
            )
    except Exception as exc:  # noqa: BLE001 -- numerics must never crash a long run
        reason = f"{type(exc).__name__}: {exc}"
        warnings.warn(
            f"bayesopt: model-based proposal failed ({reason}); using a space-filling point.",
            RuntimeWarning,
            stacklevel=3,
        )
        logger.debug("proposal failure", exc_info=True)
        return Proposal(
            params=[sobol_point(space, study_seed, first_id + k) for k in range(q)],
            attrs=[{"source": "fallback", "fallback": reason} for _ in range(q)],
        )
    return Proposal(params=params, attrs=attrs)


def _model_proposal(
    space: Space,
    trials: Sequence[Trial],
    q: int,
    seed: int,
    direction: str,
    surrogate: Any,
    acquisition: Any,
    settings: Any,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    import torch

    from acquisitions.base import AcquisitionContext
    from acquisitions.optimize import finite_candidates, optimize_acquisition

    t0 = time.perf_counter()
    device = torch.device(getattr(surrogate, "device", "cpu"))
    X, Y, P = (t.to(device) for t in training_data(space, trials, direction))
    model, attrs = fit_model(space, X, Y, surrogate, seed, trials)
    avoid = torch.cat([X, P]) if P.shape[0] else X
    # a finite domain becomes the candidates this proposal may choose from (untried
    # ones unless settings.allow_repeats; a seeded subset with settings.candidate_subset),
    # so the acquisition (Thompson draws, knowledge gradient) sees the optimizer's set
    domain = finite_candidates(domain_of(space, device), avoid, q, settings, seed)
    context = AcquisitionContext(
        X_baseline=X,
        Y_baseline=Y,
        X_pending=P if P.shape[0] else None,
        best_f=float(Y.max()),
        domain=domain,
        seed=seed,
        iteration=sum(t.state.is_finished for t in trials),
        q=q,
    )
    acqf = acquisition.build(model, context)
    finite = domain.candidates is not None  # already restricted: no second exclusion
    cand = optimize_acquisition(
        acqf, domain, q=q, settings=settings, avoid=None if finite else avoid, seed=seed
    )
    params = [space.decode(row.tolist()) for row in cand.cpu()]
    params = _make_distinct(space, params, trials, seed)
    attrs.update(
        source="model",
        acquisition=acquisition.name,
        ask_seconds=round(time.perf_counter() - t0, 4),
    )
    return params, [dict(attrs) for _ in params]


def _key(params: dict[str, Any]) -> tuple:
    return tuple((k, repr(v)) for k, v in params.items())


def _make_distinct(
    space: Space, params: list[dict[str, Any]], trials: Sequence[Trial], seed: int
) -> list[dict[str, Any]]:
    """Replace proposals that repeat each other or a running trial by random points."""
    running = {_key(t.params) for t in trials if t.state is TrialState.RUNNING}
    rng = np.random.default_rng(seed)
    seen: set[tuple] = set()
    out = []
    for p in params:
        tries = 0
        while (_key(p) in seen or _key(p) in running) and tries < 100:
            p = space.from_unit(rng.random(len(space)).tolist())
            tries += 1
        seen.add(_key(p))
        out.append(p)
    return out


def n_finished(trials: Sequence[Trial]) -> int:
    """Number of finished (COMPLETE, FAILED or PRUNED) trials: what ``n_trials`` counts.

    Rows that do not fit the space (``attrs["invalid"]``) are not counted, so crafted
    rows cannot end a run early.
    """
    return sum(t.state.is_finished for t in trials if "invalid" not in t.attrs)
