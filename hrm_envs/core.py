"""What every environment of the suite shares: argument checks, the step contract, env-id lookup."""

from __future__ import annotations

from typing import Any, SupportsInt

import gymnasium as gym
import numpy as np

#: The move order of the grid envs (Maze, City routing): action / direction a moves by ``MOVES[a]`` = (row, column)
#: delta: up, right, down, left. Oracles, encoders and augmentations index it the same way.
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))


def is_int(value: Any) -> bool:
    """True for Python and numpy integers, False for bools (which Python counts as ints)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def int_arg(value: Any, name: str, low: int, high: int | None = None) -> int:
    """Check that argument ``name`` is an int in ``[low, high]`` (``high=None``: no upper bound)."""
    if not is_int(value) or value < low or (high is not None and value > high):
        allowed = f"an int >= {low}" if high is None else f"an int in [{low}, {high}]"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def size_range(value: int | tuple[int, int] | list[int], name: str, low: int, high: int) -> tuple[int, int]:
    """Normalise an int or an inclusive ``(lo, hi)`` range, checked against ``[low, high]``."""
    if is_int(value):
        lo = hi = int(value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) for v in value):
        lo, hi = int(value[0]), int(value[1])
    else:
        raise ValueError(f"{name} must be an int or an inclusive (lo, hi) pair of ints, got {value!r}")
    if not low <= lo <= hi <= high:
        raise ValueError(f"{name} must lie in [{low}, {high}] with lo <= hi, got {value!r}")
    return lo, hi


def choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    """Check that ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


class PuzzleEnv(gym.Env):
    """Base of every puzzle environment: action checking, cost/success info, truncation, masks.

    Subclasses implement ``_load(options)`` (draw or parse a puzzle and return the step limit),
    ``_observation()``, ``_mask()`` (int8, 1 = legal) and ``_transition(action)`` returning
    ``(cost, terminated, success, info)``; ``_render_ansi`` and ``_render_rgb`` draw the state.
    Reward: ``success_reward`` on a successful terminating step, else ``-step_penalty * cost``.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}
    #: Observation keys padded up to the env's size bound (``max_size``, ``max_disks``) and the value beyond the
    #: puzzle: the same puzzle under another bound is the same observation with trailing padding added or cut.
    padding: dict[str, int] = {}

    def __init__(
        self,
        *,
        render_mode: str | None = None,
        step_penalty: float = 0.01,
        success_reward: float = 1.0,
        max_steps: int | None = None,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        if not (isinstance(step_penalty, (int, float)) and step_penalty >= 0):
            raise ValueError(f"step_penalty must be a number >= 0, got {step_penalty!r}")
        if not isinstance(success_reward, (int, float)):
            raise ValueError(f"success_reward must be a number, got {success_reward!r}")
        self.render_mode = render_mode
        self.step_penalty = float(step_penalty)
        self.success_reward = float(success_reward)
        #: Step limit given by the user; None lets each env derive one from the puzzle in ``_load``.
        self.max_steps_arg = None if max_steps is None else int_arg(max_steps, "max_steps", 1)
        self._num_actions = 0  # set by subclasses together with action_space
        self._steps = 0
        self._max_steps = 0

    # --- subclass hooks -------------------------------------------------------------------
    def _load(self, options: dict[str, Any]) -> int:
        raise NotImplementedError

    def _observation(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _mask(self) -> np.ndarray:
        raise NotImplementedError

    def _transition(self, action: int) -> tuple[float, bool, bool, dict[str, Any]]:
        raise NotImplementedError

    def _render_ansi(self) -> str:
        raise NotImplementedError

    def _render_rgb(self) -> np.ndarray:
        raise NotImplementedError

    # --- the public contract --------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"options must be a dict or None, got {type(options).__name__}")
        self._max_steps = self._load(options or {})
        self._steps = 0
        return self._observation(), {}

    def step(self, action: SupportsInt):
        cost, terminated, success, info = self._transition(self._check_action(action))
        self._steps += 1
        truncated = not terminated and self._steps >= self._max_steps
        info["cost"] = cost
        if terminated or truncated:
            info["is_success"] = bool(success and terminated)
        reward = self.success_reward if (terminated and success) else -self.step_penalty * cost
        return self._observation(), reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """Boolean legal-action mask, the sb3-contrib ``MaskablePPO`` convention."""
        return self._mask().astype(bool)

    @property
    def max_steps(self) -> int:
        """Step limit of the current episode (truncation)."""
        return self._max_steps

    def render(self):
        if self.render_mode == "ansi":
            return self._render_ansi()
        if self.render_mode == "rgb_array":
            return self._render_rgb()
        return None

    def _check_action(self, action: SupportsInt) -> int:
        if isinstance(action, np.ndarray) and action.shape == ():
            action = action.item()
        if not is_int(action):
            raise ValueError(f"action must be an int in [0, {self._num_actions}), got {action!r}")
        if not 0 <= action < self._num_actions:
            raise ValueError(f"action must be an int in [0, {self._num_actions}), got {action!r}")
        return int(action)


def env_id_of(env_or_id: gym.Env | str | type) -> str:
    """The registered id (``"hrm/Hanoi-v0"``) of an env instance, wrapper, class or id string."""
    from hrm_envs import ENV_ENTRY_POINTS

    if isinstance(env_or_id, str):
        env_id = env_or_id.split(":", 1)[1] if env_or_id.startswith("hrm_envs:") else env_or_id
        if env_id not in ENV_ENTRY_POINTS:
            raise ValueError(f"env id must be one of {sorted(ENV_ENTRY_POINTS)}, got {env_or_id!r}")
        return env_id
    cls = env_or_id if isinstance(env_or_id, type) else type(getattr(env_or_id, "unwrapped", env_or_id))
    entry = f"{cls.__module__}:{cls.__qualname__}"
    for env_id, entry_point in ENV_ENTRY_POINTS.items():
        if entry_point == entry:
            return env_id
    raise ValueError(f"env must be one of this suite's environments {sorted(ENV_ENTRY_POINTS)}, got {cls.__name__}")
