from __future__ import annotations

import csv
import json
import math

import pytest

from bayesopt import report
from bayesopt.trial import Trial, TrialState

C, F, R = TrialState.COMPLETE, TrialState.FAILED, TrialState.RUNNING


def _trials() -> list[Trial]:
    spec = [(0, C, 3.0), (1, F, None), (2, C, 5.0), (3, R, None), (4, C, 1.5), (5, C, 2.0)]
    return [
        Trial(
            i,
            {"x": 0.1 * i, "c": "a" if i % 2 else None},
            s,
            v,
            {"source": "sobol" if i < 2 else "model", "fail_reason": "boom" if s is F else None},
        )
        for i, s, v in spec
    ]


def test_best_so_far_skips_missing_and_non_finite_values():
    assert report.best_so_far([None, 3.0, math.nan, 5.0, 1.0], "minimize") == [
        None,
        3.0,
        3.0,
        3.0,
        1.0,
    ]
    assert report.best_so_far([2.0, None, 5.0, math.inf, 1.0], "maximize") == [
        2.0,
        2.0,
        5.0,
        5.0,
        5.0,
    ]


def test_regret_curve_counts_finished_trials_only():
    curve = report.regret_curve(_trials(), lambda v: max(v - 1.0, 0.0))
    # finished, in id order: 0 (3.0), 1 (failed), 2 (5.0), 4 (1.5), 5 (2.0)
    assert curve == pytest.approx([2.0, 2.0, 2.0, 0.5, 0.5])
    assert report.regret_curve(_trials(), lambda v: math.nan) == [None] * 5


def test_trial_rows_and_csv_round_trip(tmp_path):
    rows = report.trial_rows(
        _trials(), ["x", "c"], regret=lambda v: v - 1.0, ask_seconds={4: 0.25}
    )
    assert [r["id"] for r in rows] == [0, 1, 2, 3, 4, 5]
    assert [r["best_so_far"] for r in rows] == [3.0, 3.0, 3.0, None, 1.5, 1.5]
    assert [r["regret_so_far"] for r in rows] == [2.0, 2.0, 2.0, None, 0.5, 0.5]
    assert rows[4]["ask_seconds"] == 0.25 and rows[0]["ask_seconds"] is None
    assert rows[1]["fail_reason"] == "boom" and rows[1]["source"] == "sobol"

    path = report.write_trials_csv(rows, tmp_path / "t.csv")
    with path.open(newline="") as fh:
        back = list(csv.DictReader(fh))
    assert list(back[0]) == list(rows[0])
    assert [b["state"] for b in back] == [
        "COMPLETE",
        "FAILED",
        "COMPLETE",
        "RUNNING",
        "COMPLETE",
        "COMPLETE",
    ]
    assert float(back[5]["param_x"]) == rows[5]["param_x"]  # floats survive exactly
    assert back[0]["param_c"] == "" and back[1]["param_c"] == "a"
    assert back[1]["value"] == ""


def test_results_json_maps_non_finite_to_null(tmp_path):
    path = report.write_results_json(
        {"a": math.inf, "b": [1.0, math.nan, None], "c": {"d": 2}, "p": tmp_path},
        tmp_path / "r.json",
    )
    data = json.loads(path.read_text())
    assert data == {"a": None, "b": [1.0, None, None], "c": {"d": 2}, "p": str(tmp_path)}


def test_plot_convergence_writes_a_png(tmp_path):
    path = report.plot_convergence(
        {"gp": [None, 2.0, 0.5, 0.0], "random": [3.0, 3.0, 1.0, 1.0]},
        tmp_path / "c.png",
        n_initial=2,
        title="t",
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = report.plot_convergence({"gp": [None, None]}, tmp_path / "e.png", log_y=False)
    assert empty.stat().st_size > 0
