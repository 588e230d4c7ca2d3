from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from bayesopt.space import Float
from benchmarks.base import TASKS, make_task
from benchmarks.chaos import (
    CAP,
    Lorenz63Inference,
    Lorenz63InferenceRugged,
    Lorenz96Forcing,
    Lorenz96Forcing40,
    RosslerInference,
    RosslerInferenceRugged,
    ShootingInference,
)
from benchmarks.dynamics import lorenz63, lorenz96, rk4, rossler

SHOOTING = {
    "lorenz63_param": Lorenz63Inference,
    "lorenz63_param_rugged": Lorenz63InferenceRugged,
    "rossler_param": RosslerInference,
    "rossler_param_rugged": RosslerInferenceRugged,
    "lorenz96_forcing_d10": Lorenz96Forcing,
    "lorenz96_forcing_d40": Lorenz96Forcing40,
}
_CACHE: dict[str, ShootingInference] = {}


def _task(name: str) -> ShootingInference:
    """One default instance per registry name (building the data costs up to 0.3 s)."""
    if name not in _CACHE:
        _CACHE[name] = make_task(name)
    return _CACHE[name]


def _random_points(task, n: int, seed: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [
        {k: float(rng.uniform(p.low, p.high)) for k, p in task.space.items()} for _ in range(n)
    ]


# --------------------------------------------------------------------------- integrator


def test_rk4_is_fourth_order_on_a_linear_flow():
    def decay(x, theta):
        return -theta * x

    errors = []
    for n in (10, 20, 40):
        out = rk4(decay, np.array([[1.0], [2.0]]), 1.5, 1.0 / n, n)
        assert out.shape == (n, 2, 1)
        errors.append(abs(out[-1, 1, 0] - 2.0 * math.exp(-1.5)))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    np.testing.assert_allclose(orders, 4.0, atol=0.15)
    assert rk4(decay, np.ones((1, 1)), 1.0, 0.1, 10, every=5).shape == (2, 1, 1)
    with pytest.raises(ValueError, match="n_steps=10 is not a multiple of every=3"):
        rk4(decay, np.ones((1, 1)), 1.0, 0.1, 10, every=3)


def test_rk4_follows_a_time_dependent_field_from_each_start_time():
    def forced(x, theta, t):
        return theta * np.cos(t)[:, None] * np.ones_like(x)

    starts = np.array([0.0, 1.0, 2.5])
    out = rk4(forced, np.zeros((3, 1)), 2.0, 0.01, 100, every=50, t0=starts)
    expected = 2.0 * (np.sin(starts + 1.0) - np.sin(starts))
    np.testing.assert_allclose(out[-1, :, 0], expected, atol=1e-9)


def test_vector_fields_match_their_equations():
    x = np.array([[1.0, 2.0, 3.0], [-4.0, 0.5, 7.0]])
    np.testing.assert_allclose(
        lorenz63(x, np.array([10.0, 28.0, 2.5])),
        [[10.0, 1 * 25 - 2, 2 - 7.5], [45.0, -4 * 21 - 0.5, -2 - 17.5]],
    )
    np.testing.assert_allclose(
        rossler(x, np.array([0.2, 0.3, 5.0])), [[-5.0, 1.4, 0.3 + 3 * -4], [-7.5, -3.9, 0.3 - 63]]
    )
    z = np.arange(6.0)[None, :] ** 1.5
    force = np.linspace(7.0, 9.0, 6)
    expected = [
        (z[0, (i + 1) % 6] - z[0, i - 2]) * z[0, i - 1] - z[0, i] + force[i] for i in range(6)
    ]
    np.testing.assert_allclose(lorenz96(z, force)[0], expected)


# --------------------------------------------------------------------------- shooting tasks


def test_registry_and_configs_hold_every_chaos_task():
    import inspect

    from hydra import compose, initialize_config_module
    from hydra.utils import get_class, instantiate

    for name, cls in SHOOTING.items():
        assert TASKS[name] is cls
        with initialize_config_module(config_module="conf", version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"task={name}", "seed=4"])
        options = {k: v for k, v in cfg.task.items() if k != "_target_"}
        assert get_class(cfg.task._target_) is cls and options["name"] == name == cfg.study
        assert options["seed"] == 4 and options["noise_std"] == 0.0
        inspect.signature(cls).bind(**options)  # every option is a constructor argument
        assert options["obs_noise"] == cls.default_obs_noise
    task = instantiate(cfg.task)  # the last one, built for real
    assert type(task) is cls and task.seed == 4
    assert task.optimal_value == _task(name).optimal_value


@pytest.mark.parametrize("name", SHOOTING)
def test_space_holds_the_true_parameters_off_centre(name):
    task = _task(name)
    assert task.direction == "minimize" and task.dim == len(task.true_params)
    assert list(task.space) == list(task.true_params)
    pos = []
    for key, param in task.space.items():
        assert isinstance(param, Float) and not param.log
        pos.append((task.true_params[key] - param.low) / (param.high - param.low))
    pos = np.array(pos)
    assert np.all((pos > 0.1) & (pos < 0.9))
    if task.dim <= 3:
        assert np.all(np.abs(pos - 0.5) > 0.05), pos
    else:
        assert abs(pos.mean() - 0.5) > 0.05


@pytest.mark.parametrize("name", SHOOTING)
def test_value_at_the_optimum_and_at_random_points(name):
    task = _task(name)
    best = task.optimal_params[0]
    assert task(best) == pytest.approx(task.optimal_value, rel=1e-9, abs=1e-15)
    assert task.regret(task(best)) < 1e-12
    assert task.value_at_truth >= task.optimal_value
    if task.obs_noise == 0:  # exact: the data came from the same integrator
        assert task.optimum_is_exact and task.optimal_value == 0.0
        assert task(task.true_params) < 1e-24
    else:  # polished minimum next to theta*, below the loss at theta*
        assert not task.optimum_is_exact
        assert 0 < task.optimal_value < task.value_at_truth < 2 * task.optimal_value
        assert task.parameter_error(best) < 0.02
    values = np.array([task(p) for p in _random_points(task, 12, seed=1)])
    assert np.all((values >= 0) & (values <= CAP))
    assert np.all(values > task.optimal_value + 10 * max(task.optimal_value, 1e-4))
    assert np.median(values) > 0.02


@pytest.mark.parametrize("name", ["lorenz63_param", "rossler_param", "lorenz96_forcing_d10"])
def test_same_settings_give_the_same_values(name):
    a, b = _task(name), type(_task(name))()
    for params in _random_points(a, 3, seed=2):
        assert a(params) == b(params) == a(params)
    np.testing.assert_array_equal(a.observed, b.observed)
    other = type(a)(data_seed=1)  # its optimum is polished only when asked for
    assert not np.array_equal(other.observed, a.observed)
    assert other._optimum is None
    clone = pickle.loads(pickle.dumps(a))
    assert clone(a.optimal_params[0]) == a(a.optimal_params[0])


@pytest.mark.parametrize("name", ["lorenz63_param", "rossler_param"])
def test_frozen_minimum_is_a_polished_minimum(name):
    task = _task(name)
    value, best = task.polish()
    assert value == pytest.approx(task.optimal_value, rel=1e-9)
    np.testing.assert_allclose(
        list(best.values()), list(task.optimal_params[0].values()), rtol=1e-6
    )
    # Small moves in every direction do not go lower.
    theta = np.array(list(best.values()))
    for i in range(len(theta)):
        for step in (-1e-4, 1e-4):
            moved = theta.copy()
            moved[i] *= 1 + step
            assert task.loss(moved) > task.optimal_value


def test_other_settings_polish_their_own_optimum():
    task = Lorenz63Inference(n_windows=8, obs_noise=0.02)
    assert not task.optimum_is_exact
    assert task.optimal_value < task.value_at_truth
    assert task(task.optimal_params[0]) == pytest.approx(task.optimal_value, rel=1e-12)
    assert task.optimal_value != Lorenz63Inference.FROZEN[0.01][0]
    clean = Lorenz63Inference(obs_noise=0.0)
    assert clean.optimum_is_exact and clean.optimal_value == 0.0
    assert clean.optimal_params == [clean.true_params]


def test_short_windows_are_unimodal_and_long_windows_rugged():
    def local_minima(task, key):
        grid = np.linspace(20.0, 36.0, 81)  # rho, through the truth (28)
        values = np.array([task({**task.true_params, key: float(g)}) for g in grid])
        inner = values[1:-1]
        return int(np.sum((inner < values[:-2]) & (inner < values[2:]))), grid[values.argmin()]

    smooth, rugged = Lorenz63Inference(obs_noise=0.0), _task("lorenz63_param_rugged")
    assert local_minima(smooth, "rho") == (1, pytest.approx(28.0, abs=1e-9))
    count, argmin = local_minima(rugged, "rho")
    assert count >= 6 and argmin == pytest.approx(28.0, abs=1e-9)  # measured: 9


def test_diverging_windows_cost_the_cap():
    class Blowup(ShootingInference):
        field = staticmethod(lambda x, theta: theta[0] * x * x)
        param_names, true_values, bounds, x0 = ("k",), (0.1,), ((0.0, 30.0),), (1.0,)
        spinup, default_window, default_n_windows = 0.02, 0.5, 4
        default_obs_noise = 0.0

    task = Blowup()
    assert task({"k": 0.1}) == 0.0 and task.last_diverged == 0
    assert task({"k": 30.0}) == CAP and task.last_diverged == 4


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="obs_noise must be a finite number >= 0, got -0.1"):
        Lorenz63Inference(obs_noise=-0.1)
    with pytest.raises(ValueError, match="window must be a positive multiple of 0.02"):
        Lorenz63Inference(window=0.55 + 0.001)
    with pytest.raises(ValueError, match="stride must be .* >= window"):
        Lorenz63Inference(window=1.0, stride=0.5)
    with pytest.raises(ValueError, match="n_windows must be an integer >= 1, got 0"):
        Lorenz63Inference(n_windows=0)
    with pytest.raises(ValueError, match="n_sites must be an integer >= 4, got 3"):
        Lorenz96Forcing(n_sites=3)
    with pytest.raises(ValueError, match="'sigma'.*outside"):
        _task("lorenz63_param")({"sigma": 30.0, "rho": 28.0, "beta": 2.0})


def test_lorenz96_sizes_and_truth():
    small, large = _task("lorenz96_forcing_d10"), _task("lorenz96_forcing_d40")
    assert (small.dim, large.dim) == (10, 40) and small.budget == large.budget == 100
    assert list(large.space)[:2] == ["F1", "F2"]
    assert small.true_params["F1"] == 8.0
    assert small.true_params["F3"] == pytest.approx(8 + 2 * math.sin(2 * math.pi * 2 / 10))
    odd = Lorenz96Forcing(n_sites=6, obs_noise=0.0, n_windows=4)
    assert odd.dim == 6 and odd(odd.true_params) == 0.0


# --------------------------------------------------------------------------- dysts (optional)


def test_dysts_missing_names_the_extra(monkeypatch):
    import sys

    from benchmarks.chaos_dysts import DystsInference

    monkeypatch.setitem(sys.modules, "dysts", None)  # makes `import dysts.flows` fail
    monkeypatch.setitem(sys.modules, "dysts.flows", None)
    with pytest.raises(ImportError, match=r"pip install 'bayesopt\[chaos\]'"):
        DystsInference(system="Lorenz")
    assert TASKS["dysts_param"] is DystsInference


def test_dysts_lorenz_matches_our_equations_and_recovers_the_truth():
    pytest.importorskip("dysts")
    from benchmarks.chaos_dysts import DystsInference

    task = DystsInference(system="Lorenz", obs_noise=0.0)
    assert task.name == "dysts_Lorenz" and task.param_names == ("beta", "rho", "sigma")
    assert task.true_params == {"beta": 2.667, "rho": 28.0, "sigma": 10.0}
    assert task.space["rho"] == Float(0.6 * 28.0, 1.5 * 28.0)
    x = np.random.default_rng(0).normal(size=(7, 3)) * 10
    np.testing.assert_allclose(
        task.field(x, np.array([2.5, 30.0, 9.0])), lorenz63(x, np.array([9.0, 30.0, 2.5]))
    )
    assert task.optimum_is_exact and task(task.true_params) == 0.0
    values = [task(p) for p in _random_points(task, 8, seed=3)]
    assert min(values) > 1e-3 and max(values) <= CAP
    noisy = DystsInference(system="Lorenz")  # 1 % observation noise: polished minimum
    assert not noisy.optimum_is_exact
    assert 0 < noisy.optimal_value < noisy.value_at_truth
    assert noisy(noisy.optimal_params[0]) == pytest.approx(noisy.optimal_value, rel=1e-12)
    assert noisy.parameter_error(noisy.optimal_params[0]) < 0.02


def test_dysts_other_systems_and_errors():
    pytest.importorskip("dysts")
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate

    from benchmarks.chaos_dysts import DystsInference

    with initialize_config_module(config_module="conf", version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=["task=dysts_param", "task.system=Thomas", "task.obs_noise=0.0"],
        )
    task = instantiate(cfg.task)
    assert task.name == "dysts_Thomas" == cfg.study and task.dim == 2
    assert task(task.true_params) == 0.0 and task.regret(task(task.true_params)) == 0.0
    # Equations written as a method reading self.<param> (dysts' Colpitts), batched.
    colpitts = DystsInference(system="Colpitts", obs_noise=0.0, params=["a", "b"])
    assert colpitts._mode == "batch" and colpitts.dim == 2
    assert colpitts(colpitts.true_params) == 0.0
    assert colpitts({"a": colpitts.space["a"].low, "b": colpitts.true_params["b"]}) > 1e-3
    with pytest.raises(ValueError, match="'NoSuchFlow' is not a flow of dysts.flows"):
        DystsInference(system="NoSuchFlow")
    with pytest.raises(ValueError, match=r"params must be .* of Lorenz, one of \['beta'"):
        DystsInference(system="Lorenz", params=["gamma"])
    with pytest.raises(ValueError, match="delay equation"):
        DystsInference(system="MackeyGlass")
    with pytest.raises(ValueError, match="'SprottA' has no nonzero scalar parameter"):
        DystsInference(system="SprottA")


# --------------------------------------------------------------------------- echo-state network


@pytest.fixture(scope="module")
def esn():
    from benchmarks.esn import EchoStateLorenzVPT

    return EchoStateLorenzVPT()


def test_esn_space_reference_and_config(esn):
    from hydra import compose, initialize_config_module
    from hydra.utils import get_class

    from benchmarks.esn import EchoStateLorenzVPT

    assert TASKS["esn_lorenz_vpt"] is EchoStateLorenzVPT
    assert esn.direction == "maximize" and not esn.optimum_is_exact and esn.dim == 5
    assert esn.space["ridge"] == Float(1e-10, 1e-2, log=True)
    assert esn.space["leak_rate"] == Float(0.05, 1.0)
    assert 11.0 < esn.optimal_value < 20.0
    (best,) = esn.optimal_params
    esn.validate(best)
    with initialize_config_module(config_module="conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["task=esn_lorenz_vpt", "seed=1"])
    assert get_class(cfg.task._target_) is EchoStateLorenzVPT and cfg.study == "esn_lorenz_vpt"
    assert EchoStateLorenzVPT(reservoir_seed=1).optimal_value is None  # other networks: unknown


def test_esn_reference_value_and_random_points(esn):
    (best,) = esn.optimal_params
    windows = esn.valid_times(best)
    assert windows.shape == (10,) and np.all((windows >= 0) & (windows <= 20.0))
    # Bit-for-bit on the machine that froze it; OpenBLAS picks its kernels by CPU
    # (DYNAMIC_ARCH), and a window valid for nearly the whole horizon amplifies their
    # rounding: an AMD EPYC (Haswell kernels) gives 12.1645, two BLAS threads gave 12.170.
    assert float(windows.mean()) == pytest.approx(esn.optimal_value, abs=0.05)
    assert esn(best) == esn(best)  # deterministic
    assert esn.regret(esn(best)) < 0.05
    rng = np.random.default_rng(0)
    for _ in range(2):
        params = {
            k: float(
                np.exp(rng.uniform(np.log(p.low), np.log(p.high)))
                if p.log
                else rng.uniform(p.low, p.high)
            )
            for k, p in esn.space.items()
        }
        value = esn(params)
        assert 0.0 <= value < esn.optimal_value - 1.0


def test_esn_same_reservoir_same_value(esn):
    from benchmarks.esn import EchoStateLorenzVPT

    params = {
        "spectral_radius": 0.9,
        "input_scaling": 0.5,
        "leak_rate": 0.5,
        "ridge": 1e-8,
        "density": 0.05,
    }
    value = esn(params)
    assert EchoStateLorenzVPT()(params) == value
    assert EchoStateLorenzVPT(n_units=60, reservoir_seed=3)(params) != value
    with pytest.raises(ValueError, match="n_units must be an integer >= 2, got 1"):
        EchoStateLorenzVPT(n_units=1)
