"""The benchmark runner: a tiny suite end to end, resume, orphaned trials, baselines."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hydra import compose, initialize_config_module

from bayesopt.storage.sql import SQLStorage
from bayesopt.trial import TrialState
from benchmarks import runner
from benchmarks.baselines import OptunaSearch, RandomSearch, resolve_n_initial
from benchmarks.records import RunRecords, study_name
from benchmarks.synthetic import Branin, Hartmann6

TASKS = {"branin": Branin(), "hartmann6": Hartmann6()}


def _suite(tmp_path, optimizers, tasks, seeds=2, budget=8):
    path = tmp_path / "tiny.yaml"
    path.write_text(
        json.dumps(
            {
                "seeds": seeds,
                "budget": budget,
                "blocks": [{"optimizers": optimizers, "tasks": tasks}],
            }
        )
    )
    return str(path)


def _stored(out):
    """{study: (job row, finished trials)} of a run folder."""
    store = SQLStorage(f"sqlite:///{out / 'trials.db'}")
    try:
        rec = RunRecords(store.engine)
        result = {}
        for job in rec.jobs():
            study = store.load_study(job.study)
            result[job.study] = (job, store.trials(study.id), rec.asks(job.study))
    finally:
        store.dispose()
    return result


def _cfg(out, *overrides):
    with initialize_config_module("conf", version_base="1.3"):
        return compose("benchmark", overrides=[f"out={out}", *overrides])


def test_tiny_suite_end_to_end_then_resume(tmp_path):
    out = tmp_path / "run"
    suite = _suite(tmp_path, ["bayesopt", "random"], ["branin", "hartmann6"])
    runner.main([f"suite={suite}", f"out={out}", "hydra.launcher.n_jobs=2"])

    stored = _stored(out)
    assert sorted(stored) == sorted(
        study_name(o, t, s)
        for o in ("bayesopt", "random")
        for t in ("branin", "hartmann6")
        for s in (0, 1)
    )
    for job, trials, asks in stored.values():
        task = TASKS[job.task]
        assert job.status == "complete" and job.budget == 8
        assert [t.state for t in trials] == [TrialState.COMPLETE] * 8
        assert sorted(asks) == list(range(8)) and all(
            a[0] > 0 and a[1] >= 0 for a in asks.values()
        )
        for t in trials:  # the stored value is the task's value at the stored point
            assert t.value == pytest.approx(task(t.params), abs=1e-12)
        if job.optimizer == "random":  # trial k is the (seed, k) draw
            expected = RandomSearch(task.space, direction="minimize", seed=job.seed)
            assert [t.params for t in trials] == [expected._propose(k) for k in range(8)]
        else:  # our Sobol design then the model
            assert [t.attrs["source"] for t in trials[:4]] == ["sobol"] * 4
            assert {t.attrs["source"] for t in trials[4:]} == {"model"}

    report = json.loads((out / "report" / "report.json").read_text())
    md = (out / "report" / "report.md").read_text()
    for task in ("branin", "hartmann6"):
        assert (out / "report" / "plots" / f"{task}.png").stat().st_size > 5000
        assert f"![{task}](plots/{task}.png)" in md
        rows = report["summary"]["tasks"][task]["optimizers"]
        # random's median normalized regret is 1 by construction
        assert rows["random"]["normalized_regret"]["median"] == pytest.approx(1.0)
        # the simple regret in the report is the stored values' regret
        for opt in ("bayesopt", "random"):
            finals = sorted(
                min(t.value for t in stored[study_name(opt, task, s)][1])
                - TASKS[task].optimal_value
                for s in (0, 1)
            )
            assert rows[opt]["simple_regret"]["median"] == pytest.approx(np.mean(finals))
    assert "| bayesopt |" in md and "| random |" in md

    # resume: every job is finished, nothing is recomputed
    runner.main([f"suite={suite}", f"out={out}", "hydra.launcher.n_jobs=2"])
    again = _stored(out)
    for name, (job, trials, _) in again.items():
        assert job.wall_seconds == stored[name][0].wall_seconds
        assert [(t.params, t.value) for t in trials] == [
            (t.params, t.value) for t in stored[name][1]
        ]


def test_resume_continues_partial_jobs_and_orphans(tmp_path):
    out = tmp_path / "run"
    for opt in ("random", "optuna_tpe", "bayesopt"):
        runner.run_job(_cfg(out, f"optimizer={opt}", "seed=3", "budget=6"))
    before = _stored(out)

    # a process died between ask and tell: one RUNNING trial is left behind
    store = SQLStorage(f"sqlite:///{out / 'trials.db'}")
    orphans = {}
    for opt in ("random", "optuna_tpe"):
        search_cls = RandomSearch if opt == "random" else OptunaSearch
        search = search_cls(
            Branin().space,
            direction="minimize",
            seed=3,
            storage=store,
            study=study_name(opt, "branin", 3),
        )
        orphans[opt] = search.ask()
    store.dispose()

    for opt in ("random", "optuna_tpe", "bayesopt"):
        result = runner.run_job(_cfg(out, f"optimizer={opt}", "seed=3", "budget=9"))
        assert result["status"] == "complete" and result["n_finished"] == 9
    after = _stored(out)
    for opt in ("random", "optuna_tpe", "bayesopt"):
        name = study_name(opt, "branin", 3)
        trials = after[name][1]
        assert len(trials) == 9 and all(t.state is TrialState.COMPLETE for t in trials)
        assert [(t.params, t.value) for t in trials[:6]] == [
            (t.params, t.value) for t in before[name][1]
        ]
        if opt in orphans:  # the orphan was evaluated, not replaced
            assert trials[6].params == orphans[opt].params
            assert trials[6].value == pytest.approx(Branin()(orphans[opt].params))
    # random search resumed exactly where an uninterrupted run would be
    fresh = RandomSearch(Branin().space, direction="minimize", seed=3)
    assert [t.params for t in after[study_name("random", "branin", 3)][1]] == [
        fresh._propose(k) for k in range(9)
    ]
    # a finished job is skipped
    assert runner.run_job(_cfg(out, "optimizer=random", "seed=3", "budget=9"))["status"] == (
        "skipped"
    )


def test_changed_config_is_refused(tmp_path):
    out = tmp_path / "run"
    runner.run_job(_cfg(out, "optimizer=optuna_tpe", "budget=3"))
    with pytest.raises(ValueError, match="another config"):
        runner.run_job(
            _cfg(
                out,
                "optimizer=optuna_tpe",
                "budget=3",
                "+optimizer.sampler_options.multivariate=true",
            )
        )


def test_expand_suite_selects_and_keeps_blocks():
    suite = runner.load_suite("quick", ["seeds=2", "budget=5"])
    blocks = runner.expand_suite(suite)
    assert blocks[0]["seeds"] == [0, 1] and blocks[0]["budget"] == 5
    narrowed = runner.expand_suite(suite, {"optimizer": ["random"], "seed": ["1"]})
    assert [(b["optimizers"], b["seeds"]) for b in narrowed] == [(["random"], [1])]
    assert runner.expand_suite(suite, {"task": ["no_such_task"]}) == []
    args = runner.block_overrides(narrowed[0], ["budget=3", "hydra.launcher.n_jobs=1"])
    assert args[:3] == ["optimizer=random", f"task={','.join(suite.blocks[0].tasks)}", "seed=1"]
    assert args.count("budget=3") == 1 and "budget=5" not in args  # the command line wins
    with pytest.raises(ValueError, match="unknown suite"):
        runner.load_suite("no_such_suite")


def test_full_suite_grid():
    """The issue's grid: >= 4 synthetic, 4 chaotic, 6 HPO tasks, 10 seeds, hmc_bnn on a subset."""
    from omegaconf import OmegaConf

    suite = runner.load_suite("full")
    blocks = runner.expand_suite(suite)
    main = blocks[0]
    assert set(main["optimizers"]) >= {
        "bayesopt",
        "ibnn",
        "dkl",
        "random",
        "optuna_tpe",
        "optuna_gp",
    }
    assert main["seeds"] == list(range(10)) and suite.budget is None
    assert {"hmc_bnn"} == {o for b in blocks[1:] for o in b["optimizers"]}
    assert set(blocks[1]["tasks"]) < set(main["tasks"])
    conf = runner.Path(runner.__file__).resolve().parents[1] / "conf" / "task"
    families: dict[str, int] = {}
    for task in main["tasks"]:
        module = OmegaConf.load(conf / f"{task}.yaml")["_target_"].rsplit(".", 1)[0]
        families[module] = families.get(module, 0) + 1
    assert families["benchmarks.synthetic"] >= 4
    assert families.get("benchmarks.chaos", 0) + families.get("benchmarks.esn", 0) >= 4
    assert families.get("benchmarks.hpo", 0) + families.get("benchmarks.tabular", 0) >= 6


def test_baselines_share_seed_and_initial_design():
    space = Hartmann6().space
    n0 = resolve_n_initial(space, None)
    assert n0 == 4
    tpe = OptunaSearch(space, sampler="TPESampler", direction="minimize", seed=5)
    assert tpe.study.sampler._n_startup_trials == n0
    again = OptunaSearch(space, sampler="TPESampler", direction="minimize", seed=5)
    a = [tpe.ask() for _ in range(3)]
    b = [again.ask() for _ in range(3)]
    assert [t.params for t in a] == [t.params for t in b]
    with pytest.raises(ValueError, match="optuna.samplers"):
        OptunaSearch(space, sampler="NoSampler", direction="minimize", seed=0)
    rs = RandomSearch(space, direction="minimize", seed=5)
    t = rs.ask()
    with pytest.warns(RuntimeWarning, match="non-finite"):
        failed = rs.tell(t, math.nan)
    assert failed.state is TrialState.FAILED
    with pytest.raises(ValueError, match="RUNNING"):
        rs.tell(t, 1.0)


@pytest.mark.parametrize("name", ["quick", "full"])
def test_suites_name_existing_configs(name):
    conf = runner.Path(runner.__file__).resolve().parents[1] / "conf"
    for block in runner.expand_suite(runner.load_suite(name)):
        for opt in block["optimizers"]:
            assert (conf / "optimizer" / f"{opt}.yaml").is_file(), opt
        for task in block["tasks"]:
            assert (conf / "task" / f"{task}.yaml").is_file(), task


@pytest.mark.slow
def test_quick_suite(tmp_path):
    """The documented quick suite end to end (minutes on 2 cores): tables, plots, ranks."""
    import time

    start = time.perf_counter()
    out = runner.main(["suite=quick", f"out={tmp_path / 'quick'}"])
    minutes = (time.perf_counter() - start) / 60
    suite = runner.load_suite("quick")
    (block,) = runner.expand_suite(suite)
    doc = json.loads((out / "report" / "report.json").read_text())
    assert len(doc["runs"]) == len(block["optimizers"]) * len(block["tasks"]) * len(block["seeds"])
    assert all(r["status"] == "complete" for r in doc["runs"])
    for task in block["tasks"]:
        assert (out / "report" / "plots" / f"{task}.png").is_file()
    overall = doc["summary"]["overall"]
    print(
        f"\nquick suite: {minutes:.1f} min; mean ranks",
        {o: v["mean_rank"] for o, v in overall.items()},
    )
    assert minutes < 15
    # our default beats random search on mean rank even at the quick budgets
    assert overall["bayesopt"]["mean_rank"] < overall["random"]["mean_rank"]
