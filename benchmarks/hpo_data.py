"""Frozen numbers of the sklearn HPO tasks (``benchmarks.hpo``): references and costs.

Both tables are measured, not derived: regenerate them with
``python -m benchmarks.hpo_reference`` (see that module) and paste the output here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EVAL_SECONDS", "REFERENCES"]

REFERENCES: dict[tuple[str, str, str], tuple[float, float, int, bool, dict[str, Any]]] = {
    ("knn", "iris", "error"): (
        0.033333333333333215,
        0.05833333333333324,
        100,
        True,
        {"n_neighbors": 8, "p": 3},
    ),  # 0.014 s/eval, 0 non-finite
    ("knn", "wine", "error"): (
        0.16847290640394097,
        0.29556650246305416,
        100,
        True,
        {"n_neighbors": 1, "p": 1},
    ),  # 0.014 s/eval, 0 non-finite
    ("knn", "breast", "error"): (
        0.05714285714285716,
        0.07472527472527468,
        100,
        True,
        {"n_neighbors": 6, "p": 1},
    ),  # 0.039 s/eval, 0 non-finite
    ("knn", "diabetes", "mse"): (
        3021.4708602025376,
        3210.7988623581496,
        100,
        True,
        {"n_neighbors": 11, "p": 4},
    ),  # 0.014 s/eval, 0 non-finite
    ("lasso", "diabetes", "mse"): (
        2863.2075178197456,
        27414.75248845928,
        1000,
        False,
        {
            "alpha": 0.047046501164755825,
            "fit_intercept": True,
            "max_iter": 665,
            "tol": 0.005142881632023978,
            "positive": False,
        },
    ),  # 0.007 s/eval, 0 non-finite
    ("dt", "breast", "error"): (
        0.07692307692307687,
        0.1164835164835164,
        1000,
        False,
        {
            "max_depth": 12,
            "min_samples_split": 0.3633364154845989,
            "min_samples_leaf": 0.03106293916305681,
            "min_weight_fraction_leaf": 0.011514966440005178,
            "max_features": 0.9809570897799923,
            "min_impurity_decrease": 0.021021370174959697,
        },
    ),  # 0.011 s/eval, 0 non-finite
    ("linear", "breast", "error"): (
        0.03736263736263745,
        0.05054945054945059,
        1000,
        False,
        {"C": 83.56643989602233, "intercept_scaling": 1.9871314474464596},
    ),  # 0.027 s/eval, 0 non-finite
    ("rf", "wine", "error"): (
        0.020935960591132896,
        0.6125615763546799,
        1000,
        False,
        {
            "max_depth": 15,
            "min_samples_split": 0.03521464136136189,
            "min_samples_leaf": 0.07267413374827128,
            "min_weight_fraction_leaf": 0.017726560779764162,
            "max_features": 0.3733063271643889,
            "min_impurity_decrease": 0.02485912469238505,
        },
    ),  # 0.052 s/eval, 0 non-finite
    ("mlp_adam", "iris", "error"): (
        0.008333333333333193,
        0.3125,
        1000,
        False,
        {
            "hidden_layer_sizes": 94,
            "alpha": 5.608425535396022e-05,
            "batch_size": 149,
            "learning_rate_init": 0.012827552879170428,
            "tol": 7.274960018428272e-05,
            "validation_fraction": 0.6266390242671648,
            "beta_1": 0.8719482454223252,
            "beta_2": 0.9719077678436654,
            "epsilon": 9.21762455615883e-09,
        },
    ),  # 0.091 s/eval, 0 non-finite
    ("mlp_sgd", "breast", "error"): (
        0.0703296703296703,
        0.35604395604395606,
        1000,
        False,
        {
            "hidden_layer_sizes": 51,
            "alpha": 0.00012504239222915385,
            "batch_size": 111,
            "learning_rate_init": 0.00032619516663404195,
            "power_t": 0.15783334558575646,
            "tol": 0.0005103056962733598,
            "momentum": 0.8465231718861899,
            "validation_fraction": 0.36854107630122235,
        },
    ),  # 0.121 s/eval, 0 non-finite
    ("svm", "digits", "error"): (
        0.006958962446767303,
        0.009047135114208293,
        1000,
        False,
        {"C": 7.3281149144946545, "gamma": 0.00038558760506773957, "tol": 0.0016457429702614718},
    ),  # 0.125 s/eval, 0 non-finite
    ("ada", "wine", "error"): (
        0.014039408866995062,
        0.2395320197044335,
        1000,
        False,
        {"n_estimators": 35, "learning_rate": 1.204501523956932},
    ),  # 0.336 s/eval, 0 non-finite
    ("knn", "digits", "error"): (
        0.013223480449090053,
        0.02365708478513362,
        100,
        True,
        {"n_neighbors": 3, "p": 2},
    ),  # 0.567 s/eval, 0 non-finite
}
"""Frozen reference values per ``(model, dataset, metric)`` with ``split_seed=0``:
``(best, median, n, exact, params)`` = the best and the median loss of ``n`` uniform
random points over the space's own scales (``numpy.random.default_rng(0)`` on
the unit cube), or of the whole grid when ``exact`` (kNN's 100 points), from
``python -m benchmarks.hpo_reference <names> --n 1000``. ``best`` is the task's
``optimal_value`` (a proven optimum only when ``exact``), found at ``params``
(the task's ``optimal_params``); ``median`` is
Bayesmark's clip value for normalized scores (``reference_median``). Tasks
without an entry have ``optimal_value=None``."""


EVAL_SECONDS: dict[tuple[str, str], float] = {
    ("dt", "breast"): 0.015,
    ("dt", "digits"): 0.017,
    ("dt", "iris"): 0.01,
    ("dt", "wine"): 0.011,
    ("dt", "diabetes"): 0.008,
    ("rf", "breast"): 0.065,
    ("rf", "digits"): 0.079,
    ("rf", "iris"): 0.051,
    ("rf", "wine"): 0.05,
    ("rf", "diabetes"): 0.05,
    ("svm", "breast"): 0.03,
    ("svm", "digits"): 0.114,
    ("svm", "iris"): 0.011,
    ("svm", "wine"): 0.013,
    ("svm", "diabetes"): 0.016,
    ("ada", "breast"): 0.511,
    ("ada", "digits"): 0.717,
    ("ada", "iris"): 0.327,
    ("ada", "wine"): 0.331,
    ("ada", "diabetes"): 0.303,
    ("knn", "breast"): 0.043,
    ("knn", "digits"): 0.659,
    ("knn", "iris"): 0.013,
    ("knn", "wine"): 0.013,
    ("knn", "diabetes"): 0.015,
    ("mlp_adam", "breast"): 0.174,
    ("mlp_adam", "digits"): 1.338,
    ("mlp_adam", "iris"): 0.081,
    ("mlp_adam", "wine"): 0.105,
    ("mlp_adam", "diabetes"): 0.189,
    ("mlp_sgd", "breast"): 0.13,
    ("mlp_sgd", "digits"): 0.619,
    ("mlp_sgd", "iris"): 0.074,
    ("mlp_sgd", "wine"): 0.071,
    ("mlp_sgd", "diabetes"): 0.168,
    ("lasso", "breast"): 0.279,
    ("lasso", "digits"): 1.413,
    ("lasso", "iris"): 0.041,
    ("lasso", "wine"): 0.056,
    ("lasso", "diabetes"): 0.007,
    ("linear", "breast"): 0.03,
    ("linear", "digits"): 0.39,
    ("linear", "iris"): 0.029,
    ("linear", "wine"): 0.033,
    ("linear", "diabetes"): 0.007,
}
"""Mean CPU seconds per evaluation by ``(model, dataset)`` (default metric, one
thread, 5 random points; ``python -m benchmarks.hpo_reference --timing --n 5``
on the 2-core development machine, scikit-learn 1.9.1). ``nll`` costs more for
``svm`` (Platt scaling refits 5 times)."""
