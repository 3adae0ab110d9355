"""The shipped Hydra configs (``<name>.yaml`` and the groups ``env/``, ``model/``, ``train/``, ``preset/``), a package
so that they install with the wheel: :data:`CONFIG_DIR` is the one folder every entry point and reader uses."""

from importlib.resources import files
from pathlib import Path

#: The folder of the config files (in the source tree, or in site-packages when installed).
CONFIG_DIR = Path(str(files(__package__)))
