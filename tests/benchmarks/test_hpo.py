from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("sklearn")

from bayesopt.space import Categorical, Float, Int, Space  # noqa: E402
from benchmarks import make_task  # noqa: E402
from benchmarks.base import task_names  # noqa: E402
from benchmarks.hpo import DATASETS, MODELS, REFERENCES, SklearnTask, load_dataset  # noqa: E402

# The cheapest (model, dataset) pairs (<= ~0.05 s per evaluation on one core).
CHEAP = [
    ("dt", "iris"),
    ("knn", "wine"),
    ("svm", "iris"),
    ("linear", "wine"),
    ("lasso", "diabetes"),
]


def _random_points(task: SklearnTask, n: int, seed: int) -> list[dict]:
    space = Space(task.space)
    rng = np.random.default_rng(seed)
    return [space.from_unit(rng.uniform(size=len(space))) for _ in range(n)]


def test_names_parse_to_model_dataset_metric():
    names = task_names()
    assert sum(n.startswith("hpo_") for n in names) == 45
    task = make_task("hpo_mlp_adam_breast_nll")
    assert (task.model, task.dataset, task.metric) == ("mlp_adam", "breast", "nll")
    assert task.name == "hpo_mlp_adam_breast_nll"
    task = make_task("hpo_rf_digits", seed=3)
    assert (task.model, task.dataset, task.metric, task.seed) == ("rf", "digits", "error", 3)
    assert make_task("hpo_knn_diabetes").metric == "mse"
    assert (
        SklearnTask(model="lasso", dataset="diabetes", metric="mae").name
        == "hpo_lasso_diabetes_mae"
    )
    with pytest.raises(ValueError, match="not an HPO task name"):
        make_task("hpo_xgb_iris")
    with pytest.raises(ValueError, match="not an HPO task name"):
        make_task("hpo_rf_mnist")
    with pytest.raises(ValueError, match="metric must be one of \\['mae', 'mse'\\]"):
        make_task("hpo_rf_diabetes_nll")
    with pytest.raises(ValueError, match="model must be one of"):
        SklearnTask(model="xgb", dataset="iris")


def test_spaces_are_bayesmarks():
    svm = SklearnTask("svm", "digits").space
    assert svm == {
        "C": Float(1.0, 1e3, log=True),
        "gamma": Float(1e-4, 1e-3, log=True),
        "tol": Float(1e-5, 1e-1, log=True),
    }
    tree = SklearnTask("rf", "wine").space
    assert tree["max_depth"] == Int(1, 15)
    assert tree["min_samples_leaf"] == Float(0.01, 0.49, logit=True)
    assert tree["min_impurity_decrease"] == Float(0.0, 0.5)
    assert SklearnTask("dt", "wine").space == tree
    adam = SklearnTask("mlp_adam", "iris").space
    assert len(adam) == 9 and adam["beta_2"] == Float(0.9, 1.0 - 1e-6, logit=True)
    assert len(SklearnTask("mlp_sgd", "iris").space) == 8
    assert SklearnTask("knn", "iris").space == {"n_neighbors": Int(1, 25), "p": Int(1, 4)}
    assert list(SklearnTask("lasso", "iris").space) == ["C", "intercept_scaling"]
    lasso = SklearnTask("lasso", "diabetes").space
    assert list(lasso) == ["alpha", "fit_intercept", "max_iter", "tol", "positive"]
    assert lasso["fit_intercept"] == Categorical([False, True])
    assert lasso["max_iter"] == Int(10, 5000, log=True)
    ridge = SklearnTask("linear", "diabetes").space
    assert list(ridge) == ["alpha", "fit_intercept", "max_iter", "tol"]
    assert ridge["tol"] == Float(1e-4, 1e-1, log=True)


def test_split_is_a_fixed_80_percent():
    X, X_test, y, y_test = load_dataset("iris")
    assert X.shape == (120, 4) and X_test.shape == (30, 4)
    again = load_dataset("iris")
    assert again[0] is X  # cached
    other = load_dataset("iris", split_seed=1)
    assert not np.array_equal(other[2], y)


def test_knn_value_matches_a_direct_sklearn_computation():
    from sklearn.datasets import load_iris
    from sklearn.model_selection import cross_val_score, train_test_split
    from sklearn.neighbors import KNeighborsClassifier

    X, y = load_iris(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=0)
    expected = (
        1.0
        - cross_val_score(KNeighborsClassifier(n_neighbors=7, p=2), X_train, y_train, cv=5).mean()
    )
    task = SklearnTask("knn", "iris")
    assert task({"n_neighbors": 7, "p": 2}) == pytest.approx(expected, abs=1e-12)
    # an error rate of a 96/24 fold split is a multiple of 1/24 averaged over 5 folds
    assert round(expected * 120) == pytest.approx(expected * 120, abs=1e-9)


@pytest.mark.parametrize(("model", "dataset"), CHEAP)
def test_random_points_in_range_and_deterministic(model, dataset):
    task = SklearnTask(model, dataset)
    again = SklearnTask(model, dataset, seed=9)  # the seed drives noise only
    values = []
    for params in _random_points(task, 3, seed=0):
        value = task(params)
        assert value == again(params)
        assert math.isfinite(value)
        if task.metric == "error":
            assert 0.0 <= value <= 1.0
        else:
            assert 0.0 < value < 1e5  # diabetes targets are 25..346: mse < 346^2
        values.append(value)
    assert len(set(values)) >= 2


@pytest.mark.parametrize(
    ("model", "dataset"), [("knn", "iris"), ("dt", "breast"), ("lasso", "diabetes")]
)
def test_reference_point_gives_the_reference_value(model, dataset):
    task = SklearnTask(model, dataset)
    best, median, n, exact, params = REFERENCES[(model, dataset, task.metric)]
    assert task.optimal_value == best and task.reference_median == median
    assert task.optimum_is_exact == exact == (model == "knn")
    assert task(task.optimal_params[0]) == pytest.approx(best, rel=1e-9, abs=1e-12)
    assert task.regret(task(task.optimal_params[0])) < 1e-9
    # random points do not beat the reference (best of n >= 100 random or of the full grid)
    for p in _random_points(task, 5, seed=11):
        assert task(p) >= best - 1e-12
    assert best < median


def test_knn_reference_is_the_grid_minimum():
    task = SklearnTask("knn", "iris")
    values = [task({"n_neighbors": k, "p": p}) for k in range(1, 26) for p in (1, 2, 3, 4)]
    assert min(values) == pytest.approx(task.optimal_value, abs=1e-12)
    assert np.median(values) == pytest.approx(task.reference_median, abs=1e-12)


def test_other_metrics_and_generalization_loss():
    params = {
        "max_depth": 4,
        **dict.fromkeys(
            ["min_samples_split", "min_samples_leaf", "min_weight_fraction_leaf"], 0.02
        ),
        "max_features": 0.9,
        "min_impurity_decrease": 0.0,
    }
    error = SklearnTask("dt", "iris")(params)
    nll = SklearnTask("dt", "iris", metric="nll")(params)
    assert 0.0 < error < 0.2 and nll > 0.0 and math.isfinite(nll)
    mse = SklearnTask("dt", "diabetes")(params)
    mae = SklearnTask("dt", "diabetes", metric="mae")(params)
    assert mae**2 < mse < 1e4  # Jensen: mean |e| <= sqrt(mean e^2)
    test_error = SklearnTask("dt", "iris").test_loss(params)
    assert 0.0 <= test_error <= 0.3 and round(test_error * 30) == pytest.approx(test_error * 30)


def test_svm_nll_uses_platt_scaling():
    task = SklearnTask("svm", "iris", metric="nll")
    value = task({"C": 10.0, "gamma": 1e-3, "tol": 1e-3})
    assert 0.0 < value < math.log(3)  # better than the uniform guess


def test_invalid_params_are_rejected():
    task = SklearnTask("svm", "iris")
    with pytest.raises(ValueError, match="gamma"):
        task({"C": 10.0, "gamma": 1e-2, "tol": 1e-3})
    with pytest.raises(ValueError, match="missing"):
        task({"C": 10.0, "gamma": 1e-3})


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_every_pair_evaluates(model, dataset):
    task = SklearnTask(model, dataset)
    params = _random_points(task, 1, seed=4)[0]
    value = task(params)
    assert value == SklearnTask(model, dataset)(params)
    assert math.isnan(value) or value >= 0.0
    if task.optimal_params:
        assert task(task.optimal_params[0]) == pytest.approx(task.optimal_value, rel=1e-9)
