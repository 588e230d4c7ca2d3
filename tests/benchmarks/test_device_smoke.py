"""benchmarks/device_smoke.py on the CPU (its CUDA run is a device check, not CI)."""

from __future__ import annotations

import pytest

from benchmarks import device_smoke


def test_the_loop_runs_on_the_named_device_and_reports_it(capsys):
    r = device_smoke.run_surrogate("gp", "cpu", budget=12)
    assert r["ok"] and r["predict_device"] == "cpu" and r["last_source"] == "model"
    assert 0 <= r["regret"] < 10 and r["model_ask_seconds"] > 0
    assert device_smoke.main(["--device", "cpu", "--surrogates", "gp", "--budget", "12"]) == 0
    out = capsys.readouterr().out
    assert "gp" in out and "1/1 ok on cpu" in out


def test_a_surrogate_that_raises_fails_the_run_and_the_others_still_report(capsys):
    code = device_smoke.main(["--device", "nowhere", "--surrogates", "gp", "--budget", "12"])
    assert code == 1 and "FAILED" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        device_smoke.main(["--budget", "3"])
