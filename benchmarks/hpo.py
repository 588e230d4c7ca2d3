"""Bayesmark-style hyperparameter-tuning tasks on scikit-learn's bundled datasets.

Bayesmark (Uber, 2019) tunes nine scikit-learn models on small bundled
datasets; it no longer imports on current scikit-learn/numpy, so this module
re-implements its task table: the same models, fixed settings and search
spaces (with Bayesmark's log and logit scales), the same protocol, on the
installed scikit-learn.

Protocol: the dataset is shuffled and split 80 / 20 once
(``train_test_split(test_size=0.2, random_state=split_seed)``, features
unscaled as in Bayesmark); the objective is the mean 5-fold cross-validation
loss on the 80 % (``cross_val_score(cv=5)``: stratified folds for
classifiers, no shuffling), to be minimized. ``test_loss`` scores a model fit
on the whole 80 % on the held-out 20 % (Bayesmark's generalization loss; never
shown to the optimizer). Every model has a fixed ``random_state``, so the
value is a deterministic function of the parameters.

Metrics (one per task; Bayesmark's loss is the negated sklearn score):

==========  ==============  ===========================================
metric      problem         loss
==========  ==============  ===========================================
``error``   classification  1 - accuracy (Bayesmark's ``acc`` + 1); default
``nll``     classification  log loss (cross-entropy; unbounded for
                            hard 0/1 predictions such as 1-NN)
``mse``     regression      mean squared error (target units^2); default
``mae``     regression      mean absolute error
==========  ==============  ===========================================

Changes forced by current scikit-learn: Boston is gone (removed in sklearn
1.2), as are ``normalize`` of Lasso/Ridge; ``LogisticRegression(multi_class=
"ovr")`` is ``OneVsRestClassifier(LogisticRegression(solver="liblinear"))``
with ``l1_ratio`` 1 (lasso) or 0 (linear); ``SVC(probability=True)`` (only
needed for ``nll``) is ``CalibratedClassifierCV(SVC(), ensemble=False)``, the
same Platt scaling. MLPs stop after ``max_iter=MLP_MAX_ITER`` (100) epochs,
half sklearn's 200, to keep evaluations under ~1 s (early stopping ends most
fits sooner).

Registry names: ``hpo_<model>_<dataset>`` (default metric) and
``hpo_<model>_<dataset>_<metric>``, e.g. ``make_task("hpo_rf_digits")``,
``make_task("hpo_mlp_adam_breast_nll")``; models ``MODELS``, datasets
``DATASETS``. ``SklearnTask(model="rf", dataset="digits")`` is the same task.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bayesopt.space import Categorical, Float, Int, Parameter
from benchmarks.base import Task, register_family
from benchmarks.hpo_data import EVAL_SECONDS, REFERENCES

__all__ = ["DATASETS", "METRICS", "MODELS", "REFERENCES", "SklearnTask", "load_dataset"]

CV_FOLDS = 5
MLP_MAX_ITER = 100

DATASETS: dict[str, tuple[str, str]] = {
    "breast": ("load_breast_cancer", "classification"),
    "digits": ("load_digits", "classification"),
    "iris": ("load_iris", "classification"),
    "wine": ("load_wine", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}
"""Dataset name -> (``sklearn.datasets`` loader, problem type)."""

METRICS: dict[str, tuple[str, str]] = {
    "error": ("accuracy", "classification"),
    "nll": ("neg_log_loss", "classification"),
    "mse": ("neg_mean_squared_error", "regression"),
    "mae": ("neg_mean_absolute_error", "regression"),
}
"""Metric name -> (sklearn scorer, problem type)."""

DEFAULT_METRIC = {"classification": "error", "regression": "mse"}


def _tree_space(kind: str) -> dict[str, Parameter]:
    return {
        "max_depth": Int(1, 15),
        "min_samples_split": Float(0.01, 0.99, logit=True),
        "min_samples_leaf": Float(0.01, 0.49, logit=True),
        "min_weight_fraction_leaf": Float(0.01, 0.49, logit=True),
        "max_features": Float(0.01, 0.99, logit=True),
        "min_impurity_decrease": Float(0.0, 0.5),
    }


def _mlp_common() -> dict[str, Parameter]:
    return {
        "hidden_layer_sizes": Int(50, 200),
        "alpha": Float(1e-5, 1e1, log=True),
        "batch_size": Int(10, 250),
        "learning_rate_init": Float(1e-5, 1e-1, log=True),
    }


def _mlp_adam_space(kind: str) -> dict[str, Parameter]:
    return {
        **_mlp_common(),
        "tol": Float(1e-5, 1e-1, log=True),
        "validation_fraction": Float(0.1, 0.9, logit=True),
        "beta_1": Float(0.5, 0.99, logit=True),
        "beta_2": Float(0.9, 1.0 - 1e-6, logit=True),
        "epsilon": Float(1e-9, 1e-6, log=True),
    }


def _mlp_sgd_space(kind: str) -> dict[str, Parameter]:
    return {
        **_mlp_common(),
        "power_t": Float(0.1, 0.9, logit=True),
        "tol": Float(1e-5, 1e-1, log=True),
        "momentum": Float(0.001, 0.999, logit=True),
        "validation_fraction": Float(0.1, 0.9, logit=True),
    }


def _linear_space(kind: str, tol_low: float) -> dict[str, Parameter]:
    if kind == "classification":
        return {"C": Float(1e-2, 1e2, log=True), "intercept_scaling": Float(1e-2, 1e2, log=True)}
    space: dict[str, Parameter] = {
        "alpha": Float(1e-2, 1e2, log=True),
        "fit_intercept": Categorical([False, True]),
        "max_iter": Int(10, 5000, log=True),
        "tol": Float(tol_low, 1e-1, log=True),
    }
    return space


def _lasso_space(kind: str) -> dict[str, Parameter]:
    space = _linear_space(kind, tol_low=1e-5)
    if kind == "regression":
        space["positive"] = Categorical([False, True])
    return space


def _build_knn(kind: str, p: dict[str, Any], metric: str) -> Any:
    from sklearn import neighbors

    cls = (
        neighbors.KNeighborsClassifier
        if kind == "classification"
        else neighbors.KNeighborsRegressor
    )
    return cls(n_jobs=1, **p)


def _build_svm(kind: str, p: dict[str, Any], metric: str) -> Any:
    from sklearn import svm

    if kind == "regression":
        return svm.SVR(kernel="rbf", **p)
    model = svm.SVC(kernel="rbf", random_state=0, **p)
    if metric == "nll":  # Platt scaling, what SVC(probability=True) did
        from sklearn.calibration import CalibratedClassifierCV

        model = CalibratedClassifierCV(model, ensemble=False)
    return model


def _build_tree(kind: str, p: dict[str, Any], metric: str) -> Any:
    from sklearn import tree

    cls = tree.DecisionTreeClassifier if kind == "classification" else tree.DecisionTreeRegressor
    return cls(random_state=0, **p)


def _build_forest(kind: str, p: dict[str, Any], metric: str) -> Any:
    from sklearn import ensemble

    cls = (
        ensemble.RandomForestClassifier
        if kind == "classification"
        else ensemble.RandomForestRegressor
    )
    return cls(n_estimators=10, random_state=0, n_jobs=1, **p)


def _build_mlp(solver: str) -> Callable[[str, dict[str, Any], str], Any]:
    def build(kind: str, p: dict[str, Any], metric: str) -> Any:
        from sklearn import neural_network

        p = dict(p)
        p["hidden_layer_sizes"] = (p["hidden_layer_sizes"],)
        fixed: dict[str, Any] = {"solver": solver, "early_stopping": True}
        if solver == "sgd":
            fixed.update(learning_rate="invscaling", nesterovs_momentum=True)
            if kind == "regression":
                fixed["activation"] = "tanh"  # Bayesmark: relu regression diverges often
        cls = (
            neural_network.MLPClassifier
            if kind == "classification"
            else neural_network.MLPRegressor
        )
        return cls(max_iter=MLP_MAX_ITER, random_state=0, **fixed, **p)

    return build


def _build_ada(kind: str, p: dict[str, Any], metric: str) -> Any:
    from sklearn import ensemble

    cls = ensemble.AdaBoostClassifier if kind == "classification" else ensemble.AdaBoostRegressor
    return cls(random_state=0, **p)


def _build_logistic(l1_ratio: float, regressor: str) -> Callable[[str, dict[str, Any], str], Any]:
    def build(kind: str, p: dict[str, Any], metric: str) -> Any:
        from sklearn import linear_model

        if kind == "regression":
            return getattr(linear_model, regressor)(random_state=0, **p)
        from sklearn.multiclass import OneVsRestClassifier

        return OneVsRestClassifier(
            linear_model.LogisticRegression(
                l1_ratio=l1_ratio, solver="liblinear", random_state=0, **p
            )
        )

    return build


@dataclass(frozen=True)
class _Model:
    """A model of the table: its search space and how to build the estimator."""

    space: Callable[[str], dict[str, Parameter]]  # problem type -> space
    build: Callable[[str, dict[str, Any], str], Any]  # (problem type, params, metric) -> estimator
    label: str  # Bayesmark's name


MODELS: dict[str, _Model] = {
    "dt": _Model(_tree_space, _build_tree, "DT"),
    "rf": _Model(_tree_space, _build_forest, "RF"),
    "svm": _Model(
        lambda kind: {
            "C": Float(1.0, 1e3, log=True),
            "gamma": Float(1e-4, 1e-3, log=True),
            "tol": Float(1e-5, 1e-1, log=True),
        },
        _build_svm,
        "SVM",
    ),
    "ada": _Model(
        lambda kind: {"n_estimators": Int(10, 100), "learning_rate": Float(1e-4, 1e1, log=True)},
        _build_ada,
        "ada",
    ),
    "knn": _Model(lambda kind: {"n_neighbors": Int(1, 25), "p": Int(1, 4)}, _build_knn, "kNN"),
    "mlp_adam": _Model(_mlp_adam_space, _build_mlp("adam"), "MLP-adam"),
    "mlp_sgd": _Model(_mlp_sgd_space, _build_mlp("sgd"), "MLP-sgd"),
    "lasso": _Model(_lasso_space, _build_logistic(1.0, "Lasso"), "lasso"),
    "linear": _Model(
        lambda kind: _linear_space(kind, tol_low=1e-4), _build_logistic(0.0, "Ridge"), "linear"
    ),
}
"""Model name -> search space and estimator (Bayesmark's nine models)."""


@functools.cache
def load_dataset(dataset: str, split_seed: int = 0) -> tuple[Any, Any, Any, Any]:
    """The 80 / 20 split of a bundled dataset (cached; read-only arrays).

    Args:
        dataset: A key of ``DATASETS``.
        split_seed: ``random_state`` of the shuffled split.

    Returns:
        ``(X_train, X_test, y_train, y_test)``: ``n x d`` float64 features and
        ``n`` targets (int classes or float regression targets).
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)!r}, got {dataset!r}.")
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    X, y = getattr(datasets, DATASETS[dataset][0])(return_X_y=True)
    parts = train_test_split(X.astype("float64"), y, test_size=0.2, random_state=split_seed)
    for part in parts:
        part.setflags(write=False)
    return tuple(parts)


@register_family("hpo")
class SklearnTask(Task):
    """Cross-validated loss of a scikit-learn model on a bundled dataset (minimize).

    Args:
        model: A key of ``MODELS`` (``dt``, ``rf``, ``svm``, ``ada``, ``knn``,
            ``mlp_adam``, ``mlp_sgd``, ``lasso``, ``linear``).
        dataset: A key of ``DATASETS`` (``breast``, ``digits``, ``iris``,
            ``wine``: classification; ``diabetes``: regression).
        metric: A key of ``METRICS`` valid for the dataset's problem type;
            default ``error`` (classification) or ``mse`` (regression).
        split_seed: Seed of the 80 / 20 split (fixed per problem, not per run).
        threads: BLAS/OpenMP threads during an evaluation (``threadpoolctl``);
            ``None`` leaves the process setting alone.
        noise_std: Extra Gaussian observation noise (``>= 0``).
        seed: Seed of that noise.
        name: Overrides the registry name (default ``hpo_<model>_<dataset>[_<metric>]``).
    """

    direction = "minimize"

    def __init__(
        self,
        model: str = "rf",
        dataset: str = "iris",
        metric: str | None = None,
        split_seed: int = 0,
        threads: int | None = 1,
        noise_std: float = 0.0,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        if model not in MODELS:
            raise ValueError(f"model must be one of {sorted(MODELS)!r}, got {model!r}.")
        if dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {sorted(DATASETS)!r}, got {dataset!r}.")
        kind = DATASETS[dataset][1]
        metric = DEFAULT_METRIC[kind] if metric is None else metric
        if metric not in METRICS or METRICS[metric][1] != kind:
            valid = sorted(m for m, (_, k) in METRICS.items() if k == kind)
            raise ValueError(f"metric must be one of {valid!r} for {dataset!r}, got {metric!r}.")
        default_name = f"hpo_{model}_{dataset}"
        if metric != DEFAULT_METRIC[kind]:
            default_name += f"_{metric}"
        super().__init__(noise_std=noise_std, seed=seed, name=name or default_name)
        self.model, self.dataset, self.metric, self.kind = model, dataset, metric, kind
        self.split_seed, self.threads = int(split_seed), threads
        self.space = MODELS[model].space(kind)
        self.eval_seconds = EVAL_SECONDS.get((model, dataset), 0.5)
        reference = REFERENCES.get((model, dataset, metric)) if self.split_seed == 0 else None
        self.optimal_value = None if reference is None else reference[0]
        self.reference_median = None if reference is None else reference[1]
        self.optimum_is_exact = reference is not None and reference[3]
        self.optimal_params = None if reference is None else [dict(reference[4])]

    # --- the family hook ----------------------------------------------------------
    @classmethod
    def family_names(cls) -> list[str]:
        """``hpo_<model>_<dataset>`` for every model and dataset (45 names)."""
        return [f"hpo_{m}_{d}" for m in MODELS for d in DATASETS]

    @classmethod
    def parse_name(cls, name: str) -> dict[str, Any]:
        """Constructor arguments of ``hpo_<model>_<dataset>[_<metric>]``."""
        rest = name.removeprefix("hpo_")
        for model in sorted(MODELS, key=len, reverse=True):
            if rest.startswith(model + "_"):
                dataset, _, metric = rest[len(model) + 1 :].partition("_")
                if dataset in DATASETS:
                    return {"model": model, "dataset": dataset, "metric": metric or None}
        raise ValueError(
            f"not an HPO task name: {name!r}; expected hpo_<model>_<dataset>[_<metric>] with "
            f"model in {sorted(MODELS)!r}, dataset in {sorted(DATASETS)!r}."
        )

    # --- the objective ----------------------------------------------------------------
    def estimator(self, params: Mapping[str, Any]) -> Any:
        """The unfitted scikit-learn estimator of validated ``params``."""
        return MODELS[self.model].build(self.kind, dict(params), self.metric)

    def evaluate(self, params: Mapping[str, Any]) -> float:
        """Mean 5-fold CV loss on the 80 % split (``nan`` when a fit diverged)."""
        from sklearn.model_selection import cross_val_score

        X, _, y, _ = load_dataset(self.dataset, self.split_seed)
        estimator = self.estimator(params)  # imports its modules before the thread-pool scan
        with _quiet(), _threads(self.threads):
            scores = cross_val_score(estimator, X, y, scoring=METRICS[self.metric][0], cv=CV_FOLDS)
        return self._loss(float(scores.mean()))

    def test_loss(self, params: Mapping[str, Any]) -> float:
        """Loss on the held-out 20 % of a model fit on the 80 % (Bayesmark's generalization)."""
        from sklearn.metrics import get_scorer

        X, X_test, y, y_test = load_dataset(self.dataset, self.split_seed)
        estimator = self.estimator(self.validate(params))
        with _quiet(), _threads(self.threads):
            fitted = estimator.fit(X, y)
            score = get_scorer(METRICS[self.metric][0])(fitted, X_test, y_test)
        return self._loss(float(score))

    def _loss(self, score: float) -> float:
        if not math.isfinite(score):
            return math.nan
        return 1.0 - score if self.metric == "error" else -score


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence what random hyperparameters routinely trigger (non-convergence, clipping)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@functools.cache
def _controller() -> Any:
    """The thread pools of the loaded native libraries (scanned once: ~2 ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _threads(threads: int | None) -> Any:
    """Cap BLAS/OpenMP threads for the duration of one evaluation (~15 us)."""
    if threads is None:
        return contextlib.nullcontext()
    return _controller().limit(limits=threads)
