"""What every environment of the suite shares: argument checks, the step contract, env-id lookup."""

from __future__ import annotations

import functools
import inspect
import math
from typing import Any, Callable, SupportsInt

import gymnasium as gym
import numpy as np
from gymnasium import error

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


def finite_arg(value: Any, name: str, low: float = -math.inf) -> float:
    """Check that argument ``name`` is a finite real number ``>= low`` (bools refused); return it as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be a finite number >= {low}, got {value!r}")
    return float(value)


def size_range(
    value: int | tuple[int, int] | list[int], name: str, low: int, high: int, high_arg: str | None = None
) -> tuple[int, int]:
    """Normalise an int or an inclusive ``(lo, hi)`` range, checked against ``[low, high]``.

    ``high_arg`` names the argument that set ``high`` (e.g. ``max_size``), so the message says what to raise.
    """
    if is_int(value):
        lo = hi = int(value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) for v in value):
        lo, hi = int(value[0]), int(value[1])
    else:
        raise ValueError(f"{name} must be an int or an inclusive (lo, hi) pair of ints, got {value!r}")
    if not low <= lo <= hi <= high:
        hint = f" ({high_arg}={high}; raise {high_arg} for larger puzzles)" if high_arg else ""
        raise ValueError(f"{name} must lie in [{low}, {high}]{hint} with lo <= hi, got {value!r}")
    return lo, hi


def choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    """Check that ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


class ResetNeeded(error.ResetNeeded, ValueError):
    """Gymnasium's ``ResetNeeded`` (what ``gym.make``'s ``OrderEnforcing`` raises), also a ``ValueError`` like
    every other misuse of the suite's envs: raised by ``step`` before ``reset`` or after the episode's end."""


class ArgumentError(ValueError, TypeError):
    """An unknown or surplus env constructor argument: a ``ValueError`` like every bad argument of the suite,
    and still the ``TypeError`` Python raises for it, so callers that catch that keep working."""


def _checked_init(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap an env ``__init__`` so that unknown or surplus arguments raise ``ArgumentError`` naming the allowed ones.

    The check costs a set difference per construction, nothing per step.
    """
    signature = inspect.signature(init)
    allowed = [name for name in signature.parameters if name != "self"]

    @functools.wraps(init)
    def checked(self: "PuzzleEnv", *args: Any, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise ArgumentError(f"{type(self).__name__} got unknown argument(s) {unknown}; allowed arguments: {allowed}")
        try:
            signature.bind(self, *args, **kwargs)
        except TypeError as mismatch:
            raise ArgumentError(f"{type(self).__name__}: {mismatch}; allowed arguments: {allowed}") from None
        init(self, *args, **kwargs)

    return checked


class PuzzleEnv(gym.Env):
    """Base of every puzzle environment: argument and action checks, cost/success info, truncation, masks.

    Subclasses implement ``_load(options)`` (draw or parse a puzzle and return the step limit),
    ``_observation()``, ``_mask()`` (int8, 1 = legal) and ``_transition(action)`` returning
    ``(cost, terminated, success, info)``; ``_render_ansi`` and ``_render_rgb`` draw the state.
    Reward: ``success_reward`` on a successful terminating step, else ``-step_penalty * cost``.

    Order is enforced here, not only by ``gym.make``'s wrappers: ``step``, ``render``, ``action_masks`` and
    ``puzzle`` before the first ``reset`` and ``step`` after the episode ended (terminated or truncated) raise
    ``ResetNeeded`` (vector envs and SB3 reset finished sub-envs before stepping them again).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}
    #: Observation keys padded up to the env's size bound (``max_size``, ``max_disks``) and the value beyond the
    #: puzzle: the same puzzle under another bound is the same observation with trailing padding added or cut.
    padding: dict[str, int] = {}
    #: Keys ``reset(options=...)`` accepts.
    reset_options: tuple[str, ...] = ("puzzle",)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _checked_init(cls.__dict__["__init__"])  # type: ignore[method-assign]

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
        self.render_mode = render_mode
        self.step_penalty = finite_arg(step_penalty, "step_penalty", 0.0)
        self.success_reward = finite_arg(success_reward, "success_reward")
        #: Step limit given by the user; None lets each env derive one from the puzzle in ``_load``.
        self.max_steps_arg = None if max_steps is None else int_arg(max_steps, "max_steps", 1)
        self._num_actions = 0  # set by subclasses together with action_space
        self._steps = 0
        self._max_steps = 0
        self._loaded = False  # a puzzle has been loaded by reset()
        self._running = False  # loaded and the episode has not ended: step() may be called

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
        unknown = sorted(set(options or ()) - set(self.reset_options), key=str)
        if unknown:
            raise ValueError(f"options has unknown key(s) {unknown}; allowed keys: {list(self.reset_options)}")
        self._max_steps = self._load(options or {})
        self._steps = 0
        self._loaded = self._running = True
        return self._observation(), {"is_success": False}

    def step(self, action: SupportsInt):
        if not self._running:
            self.require_reset(stepping=True)
        cost, terminated, success, info = self._transition(self._check_action(action))
        self._steps += 1
        truncated = not terminated and self._steps >= self._max_steps
        info["cost"] = cost
        info["is_success"] = bool(success and terminated)  # on every step, so any wrapper's truncation finds it
        if terminated or truncated:
            self._running = False
        reward = self.success_reward if (terminated and success) else -self.step_penalty * cost
        return self._observation(), reward, terminated, truncated, info

    def require_reset(self, stepping: bool = False) -> None:
        """Raise ``ResetNeeded`` if no puzzle is loaded yet (or, ``stepping``, if the episode has ended)."""
        if not self._loaded:
            raise ResetNeeded(f"{type(self).__name__} has no puzzle yet: call reset() first")
        if stepping and not self._running:
            raise ResetNeeded(f"{type(self).__name__}'s episode has ended (terminated or truncated): call reset() first")

    def action_masks(self) -> np.ndarray:
        """Boolean legal-action mask, the sb3-contrib ``MaskablePPO`` convention."""
        self.require_reset()
        return self._mask().astype(bool)

    @property
    def max_steps(self) -> int:
        """Step limit of the current episode (truncation)."""
        return self._max_steps

    def render(self):
        self.require_reset()
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

