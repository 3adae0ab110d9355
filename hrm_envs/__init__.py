"""hrm-envs: reasoning-puzzle environments, each paired with an exact oracle.

Importing this package registers the environment ids with Gymnasium::

    import gymnasium as gym
    env = gym.make("hrm_envs:hrm/Hanoi-v0", num_disks=(3, 5))

Every environment follows one contract (``hrm_envs.checks.check_contract``; docs/guide.md): a fully observable ``Dict``
observation of fixed-shape integer arrays that includes ``action_mask``; an ``action_masks()``
method (through ``gym.make``'s wrappers: ``env.unwrapped.action_masks()``); ``info["cost"]`` and
``info["is_success"]`` (True only on a successful termination) on every step and reset; deterministic
``reset(seed=...)``; ``reset(options={"puzzle": ...})``; ``ansi`` and ``rgb_array`` rendering; and an
oracle from ``oracles.oracle_for`` that labels any reachable observation. ``hrm_envs.registry.ENVS`` holds one row
per environment (entry point, oracle, encoder, seq2seq parts), which every per-env lookup reads.
"""

from gymnasium.envs import registration

from hrm_envs.encoding import Encoder, encoder_for
from hrm_envs.registry import ENVS, EnvSpec, env_id_of, env_spec

for _spec in ENVS.values():
    if _spec.id not in registration.registry:
        registration.register(id=_spec.id, entry_point=_spec.entry_point)

__all__ = ["ENVS", "Encoder", "EnvSpec", "encoder_for", "env_id_of", "env_spec"]
