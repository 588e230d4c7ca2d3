"""benchmarks/fault_injection.py: its consistency check finds what it claims to find."""

from __future__ import annotations

import json

import pytest

from bayesopt import Optimizer, TrialState
from benchmarks.fault_injection import branin, check_study, main

SPACE_KW = dict(study="faults", seed=0, n_initial=50)


def _study(tmp_path, n_told=4):
    from benchmarks.fault_injection import _space

    url = f"sqlite:///{tmp_path / 'study.db'}"
    opt = Optimizer(_space(), storage=url, **SPACE_KW)
    acks = []
    for _ in range(n_told):
        t = opt.ask()
        value = branin(t.params["x"], t.params["y"])
        opt.tell(t, value)
        acks.append({"id": t.id, "value": value})
    return opt, acks


def _objective(p):
    return branin(p["x"], p["y"])


def test_a_consistent_study_passes(tmp_path):
    opt, acks = _study(tmp_path)
    (tmp_path / "ack.jsonl").write_text("".join(json.dumps(a) + "\n" for a in acks))
    check = check_study(tmp_path / "study.db", 4, [tmp_path / "ack.jsonl"], _objective)
    assert check.ok and check.acknowledged == 4 and check.states == {"COMPLETE": 4}
    opt.close()


def test_the_check_finds_a_lost_tell_a_wrong_value_and_a_running_trial(tmp_path):
    opt, acks = _study(tmp_path)
    lost = {"id": 9, "value": 1.0}  # acknowledged but never stored
    wrong = {"id": 0, "value": acks[0]["value"] + 1.0}  # stored with another value
    (tmp_path / "ack.jsonl").write_text(json.dumps(lost) + "\n" + json.dumps(wrong) + "\n")
    opt.ask()  # left RUNNING
    # a value written onto a trial whose point gives another
    opt.storage.create_trials(
        opt._study_id, [({"x": 0.0, "y": 0.0}, TrialState.COMPLETE, 0.5, {})]
    )
    check = check_study(tmp_path / "study.db", 10, [tmp_path / "ack.jsonl"], _objective)
    text = "\n".join(check.problems)
    assert not check.ok
    assert "{'id': 9, 'value': 1.0} is stored as None" in text
    assert "acknowledged tell {'id': 0" in text
    assert "trials left RUNNING: [4]" in text
    assert "trial 5 holds 0.5" in text
    assert "fewer than the total 10" in text
    opt.close()


@pytest.mark.slow
def test_both_scenarios_end_consistent_at_a_small_size(tmp_path):
    out = tmp_path / "faults.json"
    assert main(["study", "--kills", "4", "--trials", "16", "--json", str(out)]) == 0
    (report,) = json.loads(out.read_text())
    assert report["ok"] and report["kills"] >= 1 and report["trials"] >= 16
    assert main(["sweep", "--kills", "2", "--trials", "12", "--json", str(out)]) == 0
    (report,) = json.loads(out.read_text())
    assert report["ok"] and report["states"].get("RUNNING") is None
