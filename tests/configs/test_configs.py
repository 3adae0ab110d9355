"""configs: one CONFIG_DIR, the package's own folder, which every entry point and reader takes."""

from __future__ import annotations

from pathlib import Path

import agents.policy
import benchmarks.datasets
import configs
import train.dagger
import train.datasets.__main__
import train.evaluate
import train.ppo
import train.runs
import train.supervised
from configs import CONFIG_DIR


def test_config_dir_is_the_package_folder_with_every_config():
    assert CONFIG_DIR == Path(configs.__file__).parent
    for name in ("dagger", "supervised", "ppo", "evaluate", "datasets"):
        assert (CONFIG_DIR / f"{name}.yaml").is_file(), name
    for group in ("env", "model", "train", "preset"):
        assert list((CONFIG_DIR / group).glob("*.yaml")), group


def test_every_user_takes_the_one_config_dir():
    for module in (train.dagger, train.supervised, train.ppo, train.evaluate, train.runs, train.datasets.__main__):
        assert module.CONFIG_DIR is CONFIG_DIR, module.__name__
    assert agents.policy.MODEL_CONFIG.parent.parent == CONFIG_DIR
    assert benchmarks.datasets.PRESETS.parent == CONFIG_DIR
