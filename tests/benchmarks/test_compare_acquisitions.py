import json

import pytest

from benchmarks.base import make_task
from benchmarks.compare_acquisitions import main, paired_with, summarize


def _records(regrets):
    return [
        {"acquisition": acq, "seed": s, "regret": r, "seconds_per_ask": 0.1}
        for acq, values in regrets.items()
        for s, r in enumerate(values)
    ]


def test_paired_comparison_counts_wins_and_tests_the_signed_ranks():
    records = _records(
        {"ei": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "qlognei": [0.5, 1.0, 2.0, 3.0, 4.0, 7.0]}
    )
    result = paired_with(records, "qlognei", "ei")
    assert result["wins"] == 5 and result["seeds"] == 6
    # differences -0.5, -1, -1, -1, -1, +1: exact two-sided signed-rank p-value from scipy
    from scipy.stats import wilcoxon

    assert result["p_value"] == pytest.approx(wilcoxon([-0.5, -1, -1, -1, -1, 1]).pvalue)
    rows = summarize(records)
    ei = next(r for r in rows if r["acquisition"] == "ei")
    assert ei["median"] == 3.5 and "vs" not in ei
    assert next(r for r in rows if r["acquisition"] == "qlognei")["vs"]["wins"] == 5


def test_quick_run_scores_the_recommended_point_by_its_true_regret(tmp_path):
    out = tmp_path / "acq.json"
    doc = main(["--quick", "--acquisitions", "qlognei", "ei", "--output", str(out)])
    assert {r["acquisition"] for r in doc["records"]} == {"qlognei", "ei"}
    task = make_task("hartmann6")  # noise-free: the true values
    for rec in doc["records"]:
        assert rec["noise_std"] == pytest.approx(0.332237)
        # The regret is the true (noise-free) regret of the recommended point, not that of
        # its noisy observation. (It used to be checked as 0 <= regret < 3.33, which every
        # point of Hartmann-6 passes. No bound on how well it optimized fits this quick
        # run: with 8 evaluations, 4 of them Sobol, uniform random search's recommendation
        # (best noisy observation) has regret below 1.27 with probability 5% and below 2.61
        # with probability 50% (100,000 simulated runs), while qlognei here gets 1.31,
        # 3.07, 1.74, 3.32, 3.17, 1.60 on seeds 0-5: a bound random fails 95% of the time
        # the method fails too. How well each acquisition optimizes under noise is the full
        # benchmark's job (60 evaluations, 10 paired seeds; README).)
        truth = task.evaluate(rec["recommended"])
        assert rec["regret"] == pytest.approx(truth - task.optimal_value, abs=1e-12)
        assert rec["regret"] >= 0.0
        assert abs(rec["observed_value"] - truth) > 1e-6  # the observation was noisy
        assert set(rec["recommended"]) == set(task.space)
    assert json.loads(out.read_text())["rows"][0]["acquisition"] == "qlognei"
