"""``HRMPolicy``: an HRM actor-critic for sb3-contrib's MaskablePPO on the suite's Dict observations.

    MaskablePPO(HRMPolicy, env, policy_kwargs={"env_id": "hrm/Hanoi-v0", "hrm_config": {"hidden_size": 64}})

Observations go through the env's encoder (``hrm_envs.encoding.encoder_for``) into tokens; the action logits
come from HRM's size-independent policy head (the encoder's ``per_token_actions`` / ``global_actions``
layout), masked by ``obs["action_mask"]`` (and by any ``action_masks`` SB3 passes). Acting runs ACT
segments until the Q-head halts or ``halt_max_steps`` (:meth:`agents.hrm.HRM.predict`). Halting
(``halt_max_steps``, ``inference_halting``) not set in ``hrm_config`` is the project's model config's
(``configs/model/hrm.yaml``, as ``train.ppo`` and ``train.dagger`` act), not HRMConfig's bare defaults (8
segments per step). The halting segment is re-run with gradient so PPO's ``evaluate_actions`` trains the model
(one-step gradient). The value head reads z_H at slot 0. Segments used by the last call are in
``last_segments``; :meth:`predict_with_segments` returns them with the actions. PPO does not train the Q-head
(it has no Q loss), so halting stays as initialised unless the model was pretrained with
:func:`agents.hrm.act_loss`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from omegaconf import OmegaConf
from sb3_contrib.common.maskable.distributions import MaskableDistribution
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule

from agents.hrm import ACTING_FIELDS, HRM, HRMConfig
from agents.layers import linear
from configs import CONFIG_DIR
from hrm_envs.encoding import acting_tokens, encoder_for

MODEL_CONFIG = CONFIG_DIR / "model" / "hrm.yaml"


def default_halting() -> dict[str, Any]:
    """The halting fields (``agents.hrm.ACTING_FIELDS``) of the project's HRM model config."""
    config = OmegaConf.to_container(OmegaConf.load(MODEL_CONFIG), resolve=True)
    return {key: config[key] for key in ACTING_FIELDS if config.get(key) is not None}


class HRMPolicy(MaskableActorCriticPolicy):
    """Maskable actor-critic whose actor and critic are one HRM (see the module docstring).

    ``hrm_config`` holds HRMConfig fields other than the ones the encoder fixes (vocab_size, seq_len,
    per_token_actions, global_actions); ``token_vocab`` is forced to 0. Halting fields it leaves out come from
    :func:`default_halting`. ``last_segments``: the ACT segments each row of the last forward pass used (also
    returned by :meth:`predict_with_segments`).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        env_id: str = "hrm/Hanoi-v0",
        hrm_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        if not isinstance(observation_space, spaces.Dict) or "action_mask" not in observation_space.spaces:
            raise ValueError("observation_space must be a Dict with an 'action_mask' entry")
        self.env_id = env_id
        self.hrm_config = {**default_halting(), **(hrm_config or {})}  # saved with the model: halting as built
        self.encoder = encoder_for(env_id, observation_space)
        fixed = {"vocab_size", "seq_len", "per_token_actions", "global_actions", "token_vocab", "acting_tokens"}
        if fixed & set(self.hrm_config):
            raise ValueError(f"hrm_config must not set {sorted(fixed & set(self.hrm_config))}: the encoder fixes them")
        self.config = HRMConfig(
            vocab_size=self.encoder.vocab_size, seq_len=self.encoder.seq_len,
            per_token_actions=self.encoder.per_token_actions, global_actions=self.encoder.global_actions,
            acting_tokens=acting_tokens(self.encoder), **self.hrm_config,
        )
        if self.config.episode_carry:
            raise ValueError("hrm_config episode_carry=true is not supported by the PPO policy (SB3 policies "
                             "keep no state between steps); train it with train.dagger")
        if self.config.num_actions() != action_space.n:
            raise ValueError(
                f"action_space has {action_space.n} actions, the encoder layout {self.config.num_actions()}"
            )
        self.last_segments = np.zeros(0, dtype=np.int64)
        kwargs.setdefault("ortho_init", False)  # HRM keeps its own truncated LeCun-normal / Q-head init
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        """The HRM, a value head and the optimizer (no MLP extractor)."""
        self.model = HRM(self.config)
        self.value_net = linear(self.config.hidden_size, 1, bias=True)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(env_id=self.env_id, hrm_config=self.hrm_config)
        return data

    def tokens(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Encoder tokens of SB3's observation tensors (float after preprocessing: rounded back to ints)."""
        arrays = {k: np.rint(v.detach().cpu().numpy()).astype(np.int64) for k, v in obs.items()}
        return torch.as_tensor(self.encoder.tokens(arrays), dtype=torch.long, device=self.device)

    def _run(
        self, obs: dict[str, torch.Tensor], action_masks: np.ndarray | torch.Tensor | None, grad: bool
    ) -> tuple[MaskableDistribution, torch.Tensor]:
        """ACT until halted; masked action distribution and values."""
        out = self.model.predict({"tokens": self.tokens(obs)}, grad=grad)
        self.last_segments = out["segments"].cpu().numpy()
        legal = obs["action_mask"].round().bool()
        if action_masks is not None:
            legal = legal & torch.as_tensor(action_masks, device=legal.device).reshape(legal.shape).bool()
        distribution = self.action_dist.proba_distribution(action_logits=out["policy_logits"])
        distribution.apply_masking(legal)
        return distribution, self.value_net(out["summary"])

    def forward(
        self, obs: dict[str, torch.Tensor], deterministic: bool = False, action_masks: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        distribution, values = self._run(obs, action_masks, grad=torch.is_grad_enabled())
        actions = distribution.get_actions(deterministic=deterministic)
        return actions, values, distribution.log_prob(actions)

    def evaluate_actions(
        self, obs: dict[str, torch.Tensor], actions: torch.Tensor, action_masks: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        distribution, values = self._run(obs, action_masks, grad=True)
        return values, distribution.log_prob(actions), distribution.entropy()

    def get_distribution(
        self, obs: dict[str, torch.Tensor], action_masks: np.ndarray | None = None
    ) -> MaskableDistribution:
        return self._run(obs, action_masks, grad=torch.is_grad_enabled())[0]

    def predict_values(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._run(obs, None, grad=torch.is_grad_enabled())[1]

    def predict_with_segments(
        self, observation: dict[str, np.ndarray], action_masks: np.ndarray | None = None, deterministic: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Actions (like ``predict``) and the ACT segments each one used."""
        actions, _ = self.predict(observation, deterministic=deterministic, action_masks=action_masks)
        return actions, self.last_segments.copy()
