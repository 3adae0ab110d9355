"""hrm-envs: reasoning-puzzle environments, each paired with an exact oracle.

Importing this package registers the environment ids with Gymnasium::

    import gymnasium as gym
    env = gym.make("hrm_envs:hrm/Hanoi-v0", num_disks=(3, 5))

Every environment follows one contract (``hrm_envs.checks.check_contract``; docs/guide.md): a fully observable ``Dict``
observation of fixed-shape integer arrays that includes ``action_mask``; an ``action_masks()``
method (through ``gym.make``'s wrappers: ``env.unwrapped.action_masks()``); ``info["cost"]`` and
``info["is_success"]`` (True only on a successful termination) on every step and reset; deterministic
``reset(seed=...)``; ``reset(options={"puzzle": ...})``; ``ansi`` and ``rgb_array`` rendering; and an
oracle from ``oracles.oracle_for`` that labels any reachable observation.
"""

from gymnasium.envs.registration import register, registry

#: Environment id -> "module:Class" entry point. The oracle and encoder registries key on these ids.
ENV_ENTRY_POINTS: dict[str, str] = {
    "hrm/Hanoi-v0": "hrm_envs.hanoi.env:HanoiEnv",
    "hrm/Maze-v0": "hrm_envs.maze.env:MazeEnv",
    "hrm/CityRouting-v0": "hrm_envs.city.env:CityRoutingEnv",
    "hrm/Sudoku-v0": "hrm_envs.sudoku.env:SudokuEnv",
}

for _env_id, _entry_point in ENV_ENTRY_POINTS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point=_entry_point)

from hrm_envs.core import env_id_of  # noqa: E402
from hrm_envs.encoding import Encoder, encoder_for  # noqa: E402

__all__ = ["ENV_ENTRY_POINTS", "Encoder", "encoder_for", "env_id_of"]
