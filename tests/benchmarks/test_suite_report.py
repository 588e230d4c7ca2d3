"""Report math against hand-computed normalized regrets, ranks and quantiles."""

from __future__ import annotations

import math

import pytest

from benchmarks import report


def _run(optimizer, task, seed, values, *, direction="minimize", optimum=0.0, exact=True):
    return {
        "optimizer": optimizer,
        "task": task,
        "seed": seed,
        "budget": len(values),
        "n_initial": 1,
        "status": "complete",
        "wall_seconds": 1.0,
        "info": {
            "direction": direction,
            "optimal_value": optimum,
            "optimum_is_exact": exact,
            "dim": 2,
        },
        "values": values,
        "ask_seconds": [0.1 * (k + 1) for k in range(len(values))],
        "ask_cpu_seconds": [0.05] * len(values),
        "ask_model_seconds": [0.1 * (k + 1) for k in range(1, len(values))],
    }


def _runs():
    t = [  # minimize, exact optimum 0
        _run("random", "t", 0, [5.0, 3.0]),
        _run("random", "t", 1, [4.0, 6.0]),
        _run("random", "t", 2, [8.0, 2.0]),
        _run("a", "t", 0, [1.0, 2.0]),
        _run("a", "t", 1, [None, 0.5]),  # a failed evaluation first
        _run("a", "t", 2, [3.0, 3.0]),
    ]
    u = [  # maximize, no stored optimum
        _run("random", "u", 0, [1.0, 2.0], direction="maximize", optimum=None),
        _run("random", "u", 1, [2.0], direction="maximize", optimum=None),
        _run("a", "u", 0, [10.0], direction="maximize", optimum=None),
        _run("a", "u", 1, [2.0, 2.0], direction="maximize", optimum=None),
    ]
    return t + u


def test_best_curve_orients_and_skips_failures():
    assert report.best_curve([3.0, None, 1.0, 2.0], "minimize") == [3.0, 3.0, 1.0, 1.0]
    curve = report.best_curve([None, 1.0, math.nan, 4.0], "maximize")
    assert math.isnan(curve[0]) and curve[1:] == [-1.0, -1.0, -4.0]


def test_normalized_regret_definition():
    assert report.normalized_regret(2.0, 1.0, 5.0) == pytest.approx(0.25)
    assert report.normalized_regret(1.0, 1.0, 1.0) is None  # random reached the optimum
    assert report.normalized_regret(2.0, 1.0, math.nan) is None  # no random search


def test_summary_matches_hand_computation():
    s = report.summarize(_runs())
    t = s["tasks"]["t"]
    # opt_p = 0 (the exact optimum); random's median final best = median(3, 4, 2) = 3
    assert t["best_known"] == 0.0 and t["random_median"] == 3.0
    assert t["optimizers"]["random"]["normalized_regret_per_seed"] == pytest.approx(
        [1.0, 4 / 3, 2 / 3]
    )
    assert t["optimizers"]["a"]["normalized_regret_per_seed"] == pytest.approx([1 / 3, 1 / 6, 1.0])
    assert t["optimizers"]["a"]["normalized_regret"]["median"] == pytest.approx(1 / 3)
    assert t["optimizers"]["random"]["normalized_regret"]["median"] == pytest.approx(1.0)
    # simple regret of a: finals 1, 0.5, 3 -> median 1, quartiles 0.75 and 2
    assert t["optimizers"]["a"]["simple_regret"] == pytest.approx(
        {"median": 1.0, "q25": 0.75, "q75": 2.0, "mean": 1.5}
    )
    # ranks per seed: (a, random) = (1, 2), (1, 2), (2, 1)
    assert t["optimizers"]["a"]["mean_rank"] == pytest.approx(4 / 3)
    assert t["optimizers"]["random"]["mean_rank"] == pytest.approx(5 / 3)

    u = s["tasks"]["u"]
    # maximized: oriented finals random -2, -2; a -10, -2; opt_p = -10 (best seen), random -2
    assert u["best_known"] == 10.0 and u["random_median"] == 2.0
    assert u["optimizers"]["a"]["simple_regret"] is None  # no exact optimum
    assert u["optimizers"]["a"]["normalized_regret_per_seed"] == pytest.approx([0.0, 1.0])
    assert u["optimizers"]["random"]["normalized_regret_per_seed"] == pytest.approx([1.0, 1.0])
    # seed 1 is a tie (both 2): ranks 1.5 each
    assert u["optimizers"]["a"]["mean_rank"] == pytest.approx(1.25)
    assert u["optimizers"]["random"]["mean_rank"] == pytest.approx(1.75)

    overall = s["overall"]
    assert overall["a"]["mean_rank"] == pytest.approx((4 / 3 + 1.25) / 2)
    assert overall["random"]["mean_rank"] == pytest.approx((5 / 3 + 1.75) / 2)
    assert overall["a"]["normalized_regret_mean"] == pytest.approx((1 / 3 + 0.5) / 2)
    assert overall["random"]["normalized_regret_median"] == pytest.approx(1.0)
    # seconds per ask: median over every ask of every seed (0.1, 0.2 per two-eval run)
    assert t["optimizers"]["a"]["ask_seconds"]["median"] == pytest.approx(0.15)
    assert t["optimizers"]["a"]["ask_model_seconds"]["median"] == pytest.approx(0.2)


def test_partial_coverage_ranks_and_missing_random():
    runs = _runs() + [_run("b", "t", s, [0.2]) for s in range(3)]
    runs = [r for r in runs if not (r["task"] == "u" and r["optimizer"] == "random")]
    s = report.summarize(runs)
    # b ran only t: ranks on t among a, b, random per seed: b first everywhere
    assert s["tasks"]["t"]["optimizers"]["b"]["mean_rank"] == 1.0
    assert s["overall"]["b"]["n_tasks"] == 1 and s["common_tasks"] == ["t"]
    assert s["overall"]["a"]["mean_rank_common"] == pytest.approx(
        s["tasks"]["t"]["optimizers"]["a"]["mean_rank"]
    )
    # u has no random search: no normalized regret there
    assert s["tasks"]["u"]["optimizers"]["a"]["normalized_regret"] is None
    assert s["overall"]["a"]["n_tasks_normalized"] == 1


def test_markdown_and_plot(tmp_path):
    s = report.summarize(_runs())
    md = report.render_markdown(s, title="T", meta={"date": "today"})
    assert "| a | 2 | 1.29 |" in md  # overall row: tasks, mean rank
    assert "| a | 3 | 1 [0.75, 2] | 0.333 [0.25, 0.667] | 1.33 |" in md
    assert "![u](plots/u.png)" in md and "no stored optimum" in md
    path = report.plot_task(
        {"a": [[1.0, 0.5], [2.0, 0.0]], "random": [[3.0, 3.0], [math.nan, 1.0]]},
        tmp_path / "p.png",
        title="t",
        ylabel="simple regret",
        n_initial=1,
    )
    assert path.stat().st_size > 5000


def test_normalized_curves_line_up_budgets():
    runs = _runs()
    curves = report.normalized_curves(runs, report.summarize(runs), points=2)
    # task t, optimizer a: seeds give [1/3, 1/3], [nan, 1/6], [1, 1] (divided by random's 3)
    assert curves["a"][0] == pytest.approx([2 / 3, 1 / 3])
    # task u (maximize): opt_p -10, random median -2: a's seeds [0, 0] and [1, 1]
    assert curves["a"][1] == pytest.approx([0.5, 0.5])
    assert curves["random"][0][-1] == pytest.approx(1.0)


def test_report_of_selected_optimizers(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "load_runs", lambda storage: _runs())
    doc = report.write_report(tmp_path, "sqlite://", report_dir=tmp_path / "r", optimizers=["a"])
    assert {r["optimizer"] for r in doc["runs"]} == {"a"}
    assert (tmp_path / "r" / "report.md").exists()
    with pytest.raises(
        ValueError, match=r"optimizers \['b'\] are not in the run; it has \['a', 'random'\]"
    ):
        report.write_report(
            tmp_path, "sqlite://", report_dir=tmp_path / "s", optimizers=["a", "b"]
        )


def test_report_of_selected_tasks(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "load_runs", lambda storage: _runs())
    doc = report.write_report(tmp_path, "sqlite://", report_dir=tmp_path / "r", tasks=["u"])
    assert {r["task"] for r in doc["runs"]} == {"u"}
    assert list(doc["summary"]["tasks"]) == ["u"]
    with pytest.raises(ValueError, match=r"tasks \['v'\] are not in the run; it has \['t', 'u'\]"):
        report.write_report(tmp_path, "sqlite://", report_dir=tmp_path / "s", tasks=["v"])
