"""Models for the suite: HRM / TRM with ACT, baselines on the same interface, and an SB3 policy.

``agents.policy`` (which imports sb3-contrib) is not imported here; use ``from agents.policy import HRMPolicy``.
"""

from agents.baselines import BaselineConfig, GNNBaseline, LSTMBaseline, MLPBaseline, TransformerBaseline, baseline_loss
from agents.hrm import HRM, IGNORE_LABEL, HRMCarry, HRMConfig, act_loss, set_loss, task_loss, token_loss

__all__ = [
    "HRM", "HRMCarry", "HRMConfig", "IGNORE_LABEL", "act_loss", "set_loss", "task_loss", "token_loss",
    "BaselineConfig", "GNNBaseline", "LSTMBaseline", "MLPBaseline", "TransformerBaseline", "baseline_loss",
]
