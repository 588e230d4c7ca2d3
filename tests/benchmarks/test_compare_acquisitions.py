import json

import pytest

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
    for rec in doc["records"]:
        assert rec["noise_std"] == pytest.approx(0.332237)
        assert 0.0 <= rec["regret"] < 3.33  # true regret of an evaluated point of Hartmann-6
    assert json.loads(out.read_text())["rows"][0]["acquisition"] == "qlognei"
