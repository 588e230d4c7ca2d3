"""Every registry name has its Hydra config, and every config names a registered plug-in."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from acquisitions import available_acquisitions, get_acquisition
from surrogates import available_surrogates, get_surrogate

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.mark.parametrize(
    ("group", "names", "make"),
    [
        ("surrogate", available_surrogates(), get_surrogate),
        ("acquisition", available_acquisitions(), get_acquisition),
    ],
)
def test_config_group_matches_registry(group, names, make):
    files = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    assert files == sorted(names)
    for path in (CONF / group).glob("*.yaml"):
        cfg = OmegaConf.to_container(OmegaConf.load(path))
        name = cfg.pop("name")
        assert name == path.stem
        if group == "surrogate":  # every surrogate honours `device` (issue 3); its config says so
            assert cfg.get("device") == "cpu", path.name
        assert make(name, **cfg).name == name  # the config's options are valid
