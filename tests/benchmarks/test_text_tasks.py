"""The two offline text tasks: tables, optima, noise, the labeled data and the configs.

Candidate subsets keep the embedding work small (200 configurations, 40
templates); the full 480-template landscape is a slow test.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from benchmarks import make_task
from benchmarks import text_tasks as tt
from benchmarks.tabular import load_table

CONF = Path(__file__).resolve().parents[2] / "conf" / "task"


@pytest.fixture(scope="module")
def hpo():
    return tt.HPOBenchText(n_candidates=200)


@pytest.fixture(scope="module")
def prompts():
    return tt.ZeroShotPrompt(n_candidates=40)


# --------------------------------------------------------------------------- hpobench_text


def test_render_mlp_config_writes_the_grid_values_in_words():
    config = {
        "alpha": 2.7825593e-4,
        "batch_size": 64,
        "depth": 2,
        "learning_rate_init": 1.6681006e-3,
        "width": 256,
    }
    assert tt.render_mlp_config(config) == (
        "MLP with 2 hidden layers of width 256, batch size 64, learning rate 1.7e-3 "
        "and L2 penalty 2.8e-4."
    )
    one = tt.render_mlp_config({**config, "depth": 1, "alpha": 1e-8, "learning_rate_init": 1})
    assert one.startswith("MLP with 1 hidden layer of width") and one.endswith(
        "learning rate 1 and L2 penalty 1e-8."
    )


def test_every_configuration_gets_a_distinct_sentence():
    table = load_table("hpobench", "blood_transfusion")
    sentences = {tt.render_mlp_config(c) for c in table.configs()}
    assert len(sentences) == len(table) == 30000


def test_hpobench_text_subset_optimum_is_the_subtables_best(hpo):
    table = load_table("hpobench", "blood_transfusion")
    rows = np.sort(np.random.default_rng(0).choice(len(table), size=200, replace=False))
    expected = table.mean()[rows]
    np.testing.assert_allclose(hpo.values, expected)
    assert len(hpo.candidates) == 200 and hpo.optimal_value == pytest.approx(expected.max())
    best = hpo.optimal_params[0]
    assert hpo(best) == pytest.approx(hpo.optimal_value)
    assert hpo.config(best) == table.config(int(rows[np.argmax(expected)]))
    assert hpo.direction == "maximize" and hpo.regret(hpo(best)) == 0.0


def test_hpobench_text_full_table_and_other_datasets():
    task = make_task("hpobench_text", dataset="kc1")
    table = load_table("hpobench", "kc1")
    assert len(task.candidates) == 30000
    assert task.optimal_value == pytest.approx(table.mean().max())
    assert task(task.optimal_params[0]) == pytest.approx(task.optimal_value)


def test_hpobench_text_random_point_is_in_range_and_repeatable(hpo):
    rng = np.random.default_rng(5)
    for row in rng.choice(len(hpo.candidates), size=10, replace=False):
        params = {"config": hpo.candidates[row]}
        value = hpo(params)
        assert 0.0 <= hpo.values.min() <= value <= hpo.optimal_value <= 1.0
        assert hpo(params) == value  # noise-free: same value every time


def test_hpobench_text_noisy_variant_draws_one_seed(hpo):
    params = hpo.optimal_params[0]
    seeds = hpo.seed_values[hpo.index(params)]
    a = tt.HPOBenchText(n_candidates=200, noisy=True, seed=3)
    b = tt.HPOBenchText(n_candidates=200, noisy=True, seed=3)
    draws = [a(params) for _ in range(30)]
    assert draws == [b(params) for _ in range(30)]  # same seed, same stream
    assert set(draws) <= set(seeds.tolist()) and len(set(draws)) > 1
    assert any(d != pytest.approx(hpo(params)) for d in draws)
    other = tt.HPOBenchText(n_candidates=200, noisy=True, seed=4)
    assert [other(params) for _ in range(30)] != draws


def test_subset_seed_fixes_the_candidates(hpo):
    again = tt.HPOBenchText(n_candidates=200, seed=7)  # the noise seed does not move the subset
    assert again.candidates == hpo.candidates
    other = tt.HPOBenchText(n_candidates=200, subset_seed=1)
    assert other.candidates != hpo.candidates


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dataset": "mnist"}, "dataset"),
        ({"n_candidates": 1}, "n_candidates"),
        ({"n_candidates": 2.5}, "n_candidates"),
        ({"noisy": "yes"}, "noisy"),
    ],
)
def test_hpobench_text_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        tt.HPOBenchText(**kwargs)


def test_unknown_candidate_is_refused(hpo):
    with pytest.raises(ValueError, match="config="):
        hpo({"config": "MLP with 9 hidden layers."})
    with pytest.raises(ValueError, match="exactly the parameter"):
        hpo({"template": hpo.candidates[0]})


# --------------------------------------------------------------------------- zero_shot_prompt


def test_topic_sentences_are_balanced_and_documented():
    texts, labels = tt.load_topic_sentences()
    assert len(texts) == len(set(texts)) == 360
    assert np.bincount(labels).tolist() == [60] * len(tt.TOPIC_LABELS) == [60] * 6
    header = tt.TOPIC_DATA.read_text().splitlines()[0]
    assert header.startswith("#") and "Written by hand" in tt.TOPIC_DATA.read_text()[:400]
    assert "License" in (tt.TOPIC_DATA.parent / "README.md").read_text()


def test_templates_are_distinct_and_fill_every_label():
    templates = tt.prompt_templates()
    assert len(templates) == 12 * 8 * 5 == 480
    assert len({tt.render_template(t) for t in templates}) == 480
    assert tt.label_prompts(("This is about ", 0, ".")) == [
        f"This is about {label}." for label in tt.TOPIC_LABELS
    ]
    assert tt.render_template(("Category: ", 5, "")) == (
        "Category: {athletes | meteorologists | chefs | bankers | engineers | doctors}"
    )


def test_zero_shot_accuracy_matches_a_direct_computation(prompts):
    from bayesopt.embedding import embed

    texts, labels = tt.load_topic_sentences()
    sentences = np.asarray(embed(texts, "minilm"), dtype=np.float64)
    for row in (0, int(np.argmax(prompts.values)), int(np.argmin(prompts.values))):
        classes = np.asarray(embed(tt.label_prompts(prompts.templates[row]), "minilm"), float)
        cosine = (sentences @ classes.T) / np.outer(
            np.linalg.norm(sentences, axis=1), np.linalg.norm(classes, axis=1)
        )
        accuracy = float(np.mean(cosine.argmax(axis=1) == labels))
        assert prompts({"template": prompts.candidates[row]}) == pytest.approx(accuracy)


def test_zero_shot_optimum_and_spread(prompts):
    assert len(prompts.candidates) == 40
    assert prompts(prompts.optimal_params[0]) == prompts.optimal_value == prompts.values.max()
    # Templates really differ: the subset spans more than 15 points of accuracy.
    assert prompts.values.max() - prompts.values.min() > 0.15
    assert 0.5 < prompts.optimal_value < 1.0  # not trivial, not hopeless
    every = tt.prompt_templates()
    rows = np.sort(np.random.default_rng(0).choice(480, size=40, replace=False))
    assert prompts.templates == [every[i] for i in rows]


def test_zero_shot_noisy_variant_scores_a_sample(prompts):
    params = prompts.optimal_params[0]
    a = tt.ZeroShotPrompt(n_candidates=40, noisy=True, eval_size=30, seed=0)
    b = tt.ZeroShotPrompt(n_candidates=40, noisy=True, eval_size=30, seed=0)
    draws = [a(params) for _ in range(20)]
    assert draws == [b(params) for _ in range(20)]
    assert all(round(d * 30) == pytest.approx(d * 30) for d in draws)  # k correct of 30
    assert len(set(draws)) > 1 and any(d != prompts.optimal_value for d in draws)
    assert abs(np.mean(draws) - prompts.optimal_value) < 0.1


def test_zero_shot_builds_with_sockets_blocked(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    tt._correctness.cache_clear()
    task = tt.ZeroShotPrompt(n_candidates=20, subset_seed=3)
    assert 0.5 < task.optimal_value <= 1.0


@pytest.mark.slow
def test_full_template_landscape_is_wide():
    task = tt.ZeroShotPrompt()
    values = task.values
    assert len(values) == 480 and values.max() - values.min() > 0.3
    q25, q75 = np.percentile(values, [25, 75])
    assert q75 - q25 > 0.05
    assert np.sum(values == values.max()) <= 5


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    ("name", "cls", "options"),
    [
        ("hpobench_text", tt.HPOBenchText, {"n_candidates": 50}),
        ("zero_shot_prompt", tt.ZeroShotPrompt, {"n_candidates": 20}),
    ],
)
def test_task_configs_instantiate(name, cls, options):
    from hydra.utils import instantiate

    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    cfg = OmegaConf.merge(cfg, {"seed": 0, **options})
    task = instantiate(cfg)
    assert (
        type(task) is cls and task.name == name and len(task.candidates) == options["n_candidates"]
    )
    assert task.noisy is False and task.direction == "maximize"
