"""One encoder protocol for the model families of the suite: token sequences, graphs and text.

Each environment ships an encoder with three documented functions of the observation, so the
same observation can feed a transformer/HRM (``tokens``), a GNN (``graph``) or a text model
(``text``). ``tokens`` also accepts batched observations (leading batch dimensions).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import gymnasium as gym
import networkx as nx
import numpy as np

from hrm_envs.registry import env_spec, load


@runtime_checkable
class Encoder(Protocol):
    """Turns observations into model inputs."""

    vocab_size: int  # token ids lie in [0, vocab_size); 0 is padding
    seq_len: int  # length of ``tokens(obs)``
    # Size-independent action layout for policy heads: action ``t * per_token_actions + k`` belongs to
    # token ``t``; actions ``seq_len * per_token_actions + g`` (g < global_actions) to the whole input.
    per_token_actions: int
    global_actions: int
    # Optional (not a protocol member): ``acting_tokens``, the token ids that mark the agent's cell, whose moves
    # the global actions are (maze, city); ``model.global_readout=acting_token`` reads the global head there.
    # ``grid_width``, the side of the row-major grid the tokens form (maze, city: ``max_size``), which a grid
    # model (``model.attention_grid``) reads them by.

    def tokens(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Int64 token ids of shape ``batch_shape + (seq_len,)``."""
        ...

    def graph(self, obs: dict[str, np.ndarray]) -> nx.Graph:
        """A networkx graph with node and edge attributes (one unbatched observation)."""
        ...

    def text(self, obs: dict[str, np.ndarray]) -> str:
        """A plain-text description (one unbatched observation)."""
        ...


def acting_tokens(encoder: Encoder) -> tuple[int, ...]:
    """The token ids that mark the agent's cell (``encoder.acting_tokens``; none for envs without one)."""
    return tuple(int(t) for t in getattr(encoder, "acting_tokens", ()))


def grid_width(encoder: Encoder) -> int:
    """The width of the grid the tokens form (``encoder.grid_width``; 0 for envs whose tokens are no grid)."""
    return int(getattr(encoder, "grid_width", 0))


def encoder_for(env_or_id: gym.Env | str | type, observation_space: gym.spaces.Dict | None = None) -> Encoder:
    """The encoder of an environment (instance, class or id); shapes come from its observation space."""
    spec = env_spec(env_or_id)
    if observation_space is None:
        if isinstance(env_or_id, gym.Env):
            observation_space = env_or_id.observation_space
        else:
            raise ValueError("observation_space is required when env_or_id is an id or a class")
    return load(spec.encoder)(observation_space)
