from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from bayesopt.space import Float
from benchmarks import TASKS, Branin, Hartmann6, Task, make_task

BRANIN_MIN = 0.397887357729738
HARTMANN6_MIN = -3.32237


def _random_points(task: Task, n: int, seed: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [
        {k: float(rng.uniform(p.low, p.high)) for k, p in task.space.items()} for _ in range(n)
    ]


def test_registry_holds_the_synthetic_tasks():
    assert TASKS["branin"] is Branin
    assert TASKS["hartmann6"] is Hartmann6
    assert isinstance(make_task("branin"), Branin)
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        make_task("nope")


def test_branin_space_and_metadata():
    task = Branin()
    assert task.name == "branin"
    assert task.direction == "minimize"
    assert task.noise_std == 0.0
    assert task.space == {"x1": Float(-5.0, 10.0), "x2": Float(0.0, 15.0)}
    assert task.dim == 2
    assert task.optimal_value == pytest.approx(BRANIN_MIN, abs=1e-12)


def test_hartmann6_space_and_metadata():
    task = Hartmann6()
    assert task.name == "hartmann6"
    assert list(task.space) == [f"x{i}" for i in range(1, 7)]
    assert all(p == Float(0.0, 1.0) for p in task.space.values())
    assert task.optimal_value == pytest.approx(HARTMANN6_MIN, abs=1e-5)


@pytest.mark.parametrize("cls", [Branin, Hartmann6])
def test_known_optimizers_give_the_optimum(cls):
    task = cls()
    assert task.optimal_params
    for params in task.optimal_params:
        value = task(params)
        assert isinstance(value, float)
        assert value == pytest.approx(task.optimal_value, abs=1e-4)
        assert 0.0 <= task.regret(value) < 1e-4


@pytest.mark.parametrize("cls", [Branin, Hartmann6])
def test_random_points_are_worse_than_the_optimum(cls):
    task = cls()
    for params in _random_points(task, 50, seed=0):
        value = task(params)
        assert value > task.optimal_value + 1e-3
        assert task.regret(value) == pytest.approx(value - task.optimal_value, rel=1e-12)
        assert task.regret(value) > 0


def test_branin_closed_form_values():
    task = Branin()
    # (x2 - b x1^2 + c x1 - 6)^2 + 10 (1 - 1/(8 pi)) cos(x1) + 10 at the origin.
    assert task({"x1": 0.0, "x2": 0.0}) == pytest.approx(56.0 - 1.25 / math.pi, abs=1e-12)
    # Corner (10, 15): a (15 - 5.1*100/(4 pi^2) + 50/pi - 6)^2 + 10 (1 - t) cos(10) + 10.
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    expected = (15 - b * 100 + c * 10 - 6) ** 2 + 10 * (1 - t) * math.cos(10.0) + 10
    assert task({"x1": 10.0, "x2": 15.0}) == pytest.approx(expected, abs=1e-10)


def test_hartmann6_value_at_the_centre():
    # Reference value of Hartmann-6 at (0.5, ..., 0.5), computed from the published formula.
    alpha = np.array([1.0, 1.2, 3.0, 3.2])
    a = np.array(
        [
            [10, 3, 17, 3.5, 1.7, 8],
            [0.05, 10, 17, 0.1, 8, 14],
            [3, 3.5, 1.7, 10, 17, 8],
            [17, 8, 0.05, 10, 0.1, 14],
        ]
    )
    p = 1e-4 * np.array(
        [
            [1312, 1696, 5569, 124, 8283, 5886],
            [2329, 4135, 8307, 3736, 1004, 9991],
            [2348, 1451, 3522, 2883, 3047, 6650],
            [4047, 8828, 8732, 5743, 1091, 381],
        ]
    )
    x = np.full(6, 0.5)
    expected = -float(np.sum(alpha * np.exp(-np.sum(a * (x - p) ** 2, axis=1))))
    assert Hartmann6()({f"x{i}": 0.5 for i in range(1, 7)}) == pytest.approx(expected, abs=1e-12)


def test_parameters_are_checked_against_the_space():
    task = Branin()
    with pytest.raises(ValueError, match="'x1'.*outside"):
        task({"x1": 11.0, "x2": 1.0})
    with pytest.raises(ValueError, match="missing"):
        task({"x1": 1.0})
    with pytest.raises(ValueError, match="unknown"):
        task({"x1": 1.0, "x2": 1.0, "x3": 0.0})
    # The bounds themselves are inside (inclusive).
    assert math.isfinite(task({"x1": -5.0, "x2": 0.0}))
    assert math.isfinite(task({"x1": 10.0, "x2": 15.0}))


def test_regret_is_non_negative_and_oriented():
    task = Branin()
    assert task.regret(BRANIN_MIN - 1.0) == 0.0  # past the optimum (noise): clipped
    assert task.regret(BRANIN_MIN + 2.5) == pytest.approx(2.5)
    assert task.regret(math.inf) == math.inf
    assert task.regret(math.nan) == math.inf

    class Peak(Task):
        direction = "maximize"
        optimal_value = 1.0

        def __init__(self):
            super().__init__()
            self.space = {"x": Float(-1.0, 1.0)}

        def evaluate(self, params):
            return 1.0 - params["x"] ** 2

    peak = Peak()
    assert peak({"x": 0.5}) == pytest.approx(0.75)
    assert peak.regret(0.75) == pytest.approx(0.25)
    assert peak.regret(1.5) == 0.0

    class Unknown(Peak):
        optimal_value = None

    assert math.isnan(Unknown().regret(0.3))


def test_noise_is_seeded_and_centred():
    params = {"x1": 0.0, "x2": 0.0}
    clean = Branin()(params)
    a = Branin(noise_std=0.5, seed=3)
    b = Branin(noise_std=0.5, seed=3)
    draws_a = np.array([a(params) for _ in range(400)])
    draws_b = np.array([b(params) for _ in range(400)])
    np.testing.assert_array_equal(draws_a, draws_b)
    assert not np.allclose(draws_a, clean)
    assert draws_a.mean() == pytest.approx(clean, abs=4 * 0.5 / math.sqrt(400))
    assert draws_a.std() == pytest.approx(0.5, rel=0.15)
    with pytest.raises(ValueError, match="noise_std"):
        Branin(noise_std=-1.0)


def test_name_override_and_pickling():
    task = Branin(name="branin-noisy", noise_std=0.1, seed=0)
    assert task.name == "branin-noisy"
    assert Branin.name == "branin"
    task({"x1": 1.0, "x2": 1.0})  # builds the cached botorch function
    clone = pickle.loads(pickle.dumps(task))
    assert clone.name == "branin-noisy"
    assert Branin()(task.optimal_params[0]) == pytest.approx(BRANIN_MIN, abs=1e-9)
    assert clone.regret(clone.optimal_value) == 0.0


@pytest.mark.parametrize("name,cls", [("branin", Branin), ("hartmann6", Hartmann6)])
def test_task_configs_instantiate_through_hydra(name, cls):
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate

    with initialize_config_module(config_module="conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"task={name}", "seed=7"])
    task = instantiate(cfg.task)
    assert type(task) is cls
    assert task.name == name == cfg.study
    assert task.seed == 7 and task.noise_std == 0.0
    assert task(task.optimal_params[0]) == pytest.approx(task.optimal_value, abs=1e-4)


# --------------------------------------------------------------------------- embedded Hartmann-6


def test_embedded_hartmann6_registry_and_space():
    from benchmarks.synthetic import Hartmann6Embedded, Hartmann6Embedded25

    assert TASKS["hartmann6_d100"] is Hartmann6Embedded
    assert TASKS["hartmann6_d25"] is Hartmann6Embedded25
    for name, dim in (("hartmann6_d100", 100), ("hartmann6_d25", 25)):
        task = make_task(name)
        assert task.name == name and task.dim == dim and task.direction == "minimize"
        assert list(task.space) == [f"x{i}" for i in range(1, dim + 1)]
        assert all(p == Float(0.0, 1.0) for p in task.space.values())
        assert task.optimal_value == pytest.approx(HARTMANN6_MIN, abs=1e-5)
    assert Hartmann6Embedded(dim=8).dim == 8


def test_embedded_hartmann6_is_hartmann6_of_the_active_coordinates():
    from benchmarks.synthetic import Hartmann6Embedded

    h6 = Hartmann6()
    task = Hartmann6Embedded(dim=12, active_dims=[11, 0, 5, 3, 7, 2])
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = rng.uniform(size=12)
        params = {f"x{i + 1}": float(v) for i, v in enumerate(x)}
        active = {f"x{j + 1}": float(x[i]) for j, i in enumerate([11, 0, 5, 3, 7, 2])}
        assert task(params) == h6(active)  # the same float64 computation, exactly
        # The inert coordinates do not move the value.
        inert = dict(params)
        for i in set(range(12)) - {11, 0, 5, 3, 7, 2}:
            inert[f"x{i + 1}"] = float(rng.uniform())
        assert task(inert) == task(params)


@pytest.mark.parametrize("dim", [6, 25, 100])
def test_embedded_hartmann6_optimum_with_any_inert_values(dim):
    from benchmarks.synthetic import Hartmann6Embedded

    task = Hartmann6Embedded(dim=dim)
    (best,) = task.optimal_params
    assert task.regret(task(best)) < 1e-6
    rng = np.random.default_rng(dim)
    moved = {k: (v if i < 6 else float(rng.uniform())) for i, (k, v) in enumerate(best.items())}
    assert task(moved) == task(best)
    for params in _random_points(task, 20, seed=dim):
        assert task(params) > task.optimal_value + 1e-3


def test_embedded_hartmann6_checks_its_arguments():
    from benchmarks.synthetic import Hartmann6Embedded

    with pytest.raises(ValueError, match="dim must be an integer >= 6, got 5"):
        Hartmann6Embedded(dim=5)
    with pytest.raises(ValueError, match="dim.*got 2.5"):
        Hartmann6Embedded(dim=2.5)
    with pytest.raises(ValueError, match=r"active_dims.*\[0, 10\).*\[0, 1, 2, 3, 4, 10\]"):
        Hartmann6Embedded(dim=10, active_dims=[0, 1, 2, 3, 4, 10])
    with pytest.raises(ValueError, match="active_dims"):
        Hartmann6Embedded(dim=10, active_dims=[0, 0, 1, 2, 3, 4])
    with pytest.raises(ValueError, match="active_dims"):
        Hartmann6Embedded(dim=10, active_dims=[0, 1, 2])


def test_embedded_hartmann6_pickles_and_noise():
    from benchmarks.synthetic import Hartmann6Embedded

    task = Hartmann6Embedded(dim=30, active_dims=[29, 28, 27, 26, 25, 24], noise_std=0.1, seed=0)
    (best,) = task.optimal_params
    task(best)  # builds the cached botorch function
    clone = pickle.loads(pickle.dumps(task))
    assert clone.active_dims == (29, 28, 27, 26, 25, 24) and clone.dim == 30
    assert Hartmann6Embedded(dim=30, active_dims=clone.active_dims)(best) == pytest.approx(
        HARTMANN6_MIN, abs=1e-5
    )
    draws = np.array([task(best) for _ in range(200)])
    assert draws.std() == pytest.approx(0.1, rel=0.2)


@pytest.mark.parametrize("name,dim", [("hartmann6_d25", 25), ("hartmann6_d100", 100)])
def test_embedded_task_configs_instantiate_through_hydra(name, dim):
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate

    from benchmarks.synthetic import Hartmann6Embedded

    with initialize_config_module(config_module="conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"task={name}", "seed=3"])
    task = instantiate(cfg.task)
    assert isinstance(task, Hartmann6Embedded)
    assert task.name == name == cfg.study and task.dim == dim and task.seed == 3
    assert task(task.optimal_params[0]) == pytest.approx(HARTMANN6_MIN, abs=1e-5)
    with initialize_config_module(config_module="conf", version_base="1.3"):
        cfg = compose(
            config_name="config", overrides=[f"task={name}", "task.active_dims=[5,4,3,2,1,0]"]
        )
    assert instantiate(cfg.task).active_dims == (5, 4, 3, 2, 1, 0)


def test_budget_follows_the_suite_rule_unless_the_task_states_one():
    from benchmarks.synthetic import Branin, Hartmann6Embedded

    assert Branin().budget == 50
    assert Hartmann6Embedded().budget == 100

    class Stated(Branin):
        default_budget = 30

    assert Stated().budget == 30


# --------------------------------------------------------------------------- 10-D functions

TEN_D = {
    "ackley10": ("Ackley10", (-5.0, 10.0), 0.0, 0.0),
    "levy10": ("Levy10", (-10.0, 10.0), 0.0, 1.0),
    "styblinski_tang10": (
        "StyblinskiTang10",
        (-5.0, 5.0),
        -391.6616570377142,
        -2.9035340277711771,
    ),
}


@pytest.mark.parametrize("name", TEN_D)
def test_ten_dimensional_functions_space_and_optimum(name):
    import benchmarks.synthetic as synthetic

    cls_name, (low, high), f_star, x_star = TEN_D[name]
    task = make_task(name)
    assert type(task) is getattr(synthetic, cls_name) and task.name == name
    assert task.dim == 10 and task.budget == 100 and task.direction == "minimize"
    assert all(p == Float(low, high) for p in task.space.values())
    assert task.optimal_value == f_star and task.optimum_is_exact
    assert task.optimal_params == [{f"x{i}": x_star for i in range(1, 11)}]
    assert task(task.optimal_params[0]) == pytest.approx(f_star, abs=1e-12)
    assert task.eval_seconds > 0
    rng = np.random.default_rng(5)
    for params in _random_points(task, 30, seed=5):
        value = task(params)
        assert value > f_star + 1.0
        assert value == _fresh_value(task, params)
    # Any single coordinate moved off the minimizer raises the value.
    moved = dict(task.optimal_params[0], x4=x_star + float(rng.uniform(0.3, 1.0)))
    assert task(moved) > f_star + 1e-3


def _fresh_value(task, params):
    """A fresh instance gives the same value (deterministic, no hidden state)."""
    return type(task)()(params)


def test_ten_dimensional_closed_forms():
    from benchmarks.synthetic import Ackley10, Levy10, StyblinskiTang10

    x = np.linspace(-2.0, 3.0, 10)
    params = {f"x{i + 1}": float(v) for i, v in enumerate(x)}
    ackley = (
        -20 * math.exp(-0.2 * math.sqrt(np.mean(x**2)))
        - math.exp(np.mean(np.cos(2 * math.pi * x)))
        + 20
        + math.e
    )
    assert Ackley10()(params) == pytest.approx(ackley, abs=1e-12)
    w = 1 + (x - 1) / 4
    levy = (
        math.sin(math.pi * w[0]) ** 2
        + np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2))
        + (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    )
    assert Levy10()(params) == pytest.approx(levy, abs=1e-12)
    st = 0.5 * np.sum(x**4 - 16 * x**2 + 5 * x)
    assert StyblinskiTang10()(params) == pytest.approx(st, abs=1e-12)


@pytest.mark.parametrize("name", list(TEN_D))
def test_ten_dimensional_configs_instantiate_through_hydra(name):
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate

    with initialize_config_module(config_module="conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"task={name}", "seed=2"])
    task = instantiate(cfg.task)
    assert task.name == name == cfg.study and task.seed == 2 and task.dim == 10
    assert task.regret(task(task.optimal_params[0])) < 1e-12
