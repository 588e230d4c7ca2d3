"""A device that cannot work is refused when a surrogate is built, not at every fit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from surrogates.base import available_surrogates, check_device, get_surrogate

NO_CUDA = not torch.cuda.is_available()
NO_MPS = not torch.backends.mps.is_available()
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", available_surrogates())
def test_every_surrogate_accepts_the_cpu(name):
    assert get_surrogate(name, device="cpu").device == "cpu"
    assert get_surrogate(name, device=torch.device("cpu")).device == torch.device("cpu")


@pytest.mark.skipif(not NO_CUDA, reason="CUDA is available here")
@pytest.mark.parametrize("name", available_surrogates())
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_every_surrogate_refuses_cuda_without_cuda(name, device):
    with pytest.raises(
        ValueError, match=rf"device: '{device}' requested but CUDA is not available"
    ):
        get_surrogate(name, device=device)


@pytest.mark.parametrize("name", available_surrogates())
@pytest.mark.parametrize(
    ("device", "why"),
    [
        ("bogus", r"device: 'bogus' is not a torch device"),
        ("gpu", r"device: 'gpu' is not a torch device"),
        ("meta", r"device: 'meta' is not supported; expected one of \['cpu', 'cuda', 'mps'\]"),
        (0, r"device: expected a torch device string .* got 0"),
    ],
)
def test_every_surrogate_refuses_an_unknown_device(name, device, why):
    with pytest.raises(ValueError, match=why):
        get_surrogate(name, device=device)


@pytest.mark.skipif(not NO_MPS, reason="MPS is available here")
def test_mps_without_mps_is_refused():
    with pytest.raises(ValueError, match=r"device: 'mps' requested but MPS is not available"):
        check_device("mps")


def test_a_cuda_index_past_the_visible_gpus_is_refused(monkeypatch):
    # two visible GPUs (real or simulated): indices 0 and 1 pass, 2 is refused
    if torch.cuda.device_count() != 2:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_device("cuda:1") == "cuda:1" and check_device("cuda") == "cuda"
    with pytest.raises(ValueError, match=r"device: 'cuda:2' .* only 2 CUDA device\(s\) .* 0\.\.1"):
        check_device("cuda:2")


@pytest.mark.skipif(not NO_CUDA, reason="CUDA is available here")
def test_the_optimizer_refuses_before_storing_anything(tmp_path):
    from bayesopt import Float, Optimizer

    db = tmp_path / "study.db"
    with pytest.raises(ValueError, match=r"device: 'cuda' requested but CUDA is not available"):
        Optimizer(
            {"x": Float(0, 1)}, surrogate_options={"device": "cuda"}, storage=f"sqlite:///{db}"
        )
    assert not db.exists()


@pytest.mark.skipif(not NO_CUDA, reason="CUDA is available here")
def test_the_cli_exits_non_zero_naming_the_device(tmp_path):
    env = {**os.environ, "BAYESOPT_TORCH_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bayesopt",
            "task=branin",
            "n_trials=3",
            "surrogate.device=cuda",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "device: 'cuda' requested but CUDA is not available" in proc.stderr
    assert not (tmp_path / "study.db").exists() and not (tmp_path / "results.json").exists()
