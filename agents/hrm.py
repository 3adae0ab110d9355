"""Hierarchical Reasoning Model (HRM) with ACT, its recursive (TRM-style) variant, heads and losses.

Facts follow the reference HRM implementation (Wang et al. 2025) and the TRM paper (Jolicoeur-Martineau 2025);
the code is this project's own. One call of :meth:`HRM.forward` runs ONE segment for the whole batch:

- Sequences whose carry says ``halted`` are first replaced by the matching rows of the new ``batch``
  (fresh state from the fixed ``H_init``/``L_init`` buffers, step counter 0), so a training loop keeps a
  carry across optimizer steps and feeds a fresh batch each step (deep supervision: one loss per segment).
- ``variant="hrm"``: L (``L_layers`` blocks) runs ``L_cycles`` times per H update, H runs ``H_cycles`` times;
  only the last L and the last H update carry gradient (one-step gradient), the rest run under no_grad.
  Halting: ``q_halt > q_continue`` (or ``halt_max_steps``), with minimum-steps exploration in training and
  a bootstrapped continue target from one extra no_grad segment.
- ``variant="trm"``: one shared network (``L_layers`` blocks) updates both states; the last H cycle (all its
  L updates and the H update) is back-propagated in full; halting on ``q_halt > 0``, no continue target.
- ``full_backprop=True`` (for the memory benchmark only): every update carries gradient and the carry is
  not detached, i.e. back-propagation through all cycles and segments.

Batch keys (every value per-example, batch first; the keys of ``train.datasets.StepwiseDataset`` items):
``tokens`` (B, T) int64; optional ``puzzle_identifiers`` (B,); token task ``labels`` (B, T) with
``IGNORE_LABEL`` for ignored positions; policy task ``optimal`` (B, A) and optional ``action_mask`` (B, A)
(1 = legal), with ``A = T * per_token_actions + global_actions`` (the ``Encoder`` layout of
``hrm_envs.encoding``: action ``t * K + k`` belongs to token ``t``; globals read the position-0 slot).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from agents.layers import (ATTENTION_DIRECTIONS, BLOCKS, FrontBlock, FrontGates, GridRotary, GridWindow, Mask,
                           ReasoningModule, Rotary, WaveBlock, WaveGates, linear, local_attention_mask,
                           peer_attention_mask, trunc_normal_, wave_gate_loss)

if TYPE_CHECKING:
    from agents.baselines import BaselineConfig

IGNORE_LABEL = -100
POS_ENCODINGS = ("rope", "rope2d", "learned")
VARIANTS = ("hrm", "trm")
LOSSES = ("stablemax", "softmax")
INFERENCE_HALTING = ("q_head", "max_steps", "reached")
GLOBAL_READOUTS = ("prefix", "acting_token")
DEPTH_TRAINING = ("fixed", "progressive")
HALT_SCALES = ("fixed", "tokens", "side")
#: The HRMConfig fields that change how a trained model acts, not its weights (evaluation may override them).
ACTING_FIELDS = ("inference_halting", "halt_max_steps", "halt_scale", "halt_reference", "halt_tolerance",
                 "episode_carry")


@dataclass(frozen=True)
class HRMConfig:
    """Model configuration in seven parts; every field is validated with a ``ValueError`` naming it.

    **Sizes and blocks.** ``vocab_size`` / ``seq_len`` of the inputs; blocks of width ``hidden_size`` with
    ``num_heads`` heads and an MLP ``expansion``; ``H_layers`` / ``L_layers`` blocks per level (``H_layers`` is unused
    by the ``trm`` variant: its single network has ``L_layers`` blocks). ``puzzle_emb_len`` prefix slots precede the
    tokens: a (zero-initialised) puzzle embedding when ``num_puzzle_identifiers > 0``, else a learned vector; slot 0
    feeds the Q-head and the global actions.

    **Recurrence.** A segment runs ``H_cycles`` x (``L_cycles`` L updates, one H update). ``variant="hrm"``: separate
    H and L levels, the last L and the last H update carry gradient; ``"trm"``: one shared network, the whole last
    recursion carries gradient (see the module docstring). ``full_backprop`` (memory benchmark only): every update
    carries gradient and the carry is not detached.

    **Attention and positions.** ``attention_window`` 0 is full attention; ``w >= 1`` lets a token attend only to
    tokens at most ``w`` apart (the prefix slots see everything; :func:`agents.layers.local_attention_mask`), so
    information travels ``w`` tokens per block application and the cycles and ACT segments become the depth a longer
    puzzle needs. ``attention_direction`` (with a window) ``"earlier"`` / ``"later"`` lets a token see only its own
    and earlier / later neighbours, so information flows one way along the sequence (a scan), ``"both"`` both ways.
    ``attention_grid`` (with a window) ``g >= 1`` reads the tokens as a row-major grid ``g`` wide and the window as a
    Manhattan radius on it (:class:`agents.layers.GridWindow`): on a maze or city grid a cell then reads its
    up / down / left / right neighbours, not the cells next to it in the row-major sequence.
    ``attention_peers`` ``b >= 2`` reads the tokens as a row-major Sudoku of ``b x b`` boxes (``seq_len =
    (b * b) ** 2``; 4x4: ``attention_peers=2``, 9x9: ``attention_peers=3``): a cell attends to its peers (same row,
    column or box), itself and the prefix slots, which attend to everything
    (:func:`agents.layers.peer_attention_mask`). One block application then computes a cell's candidate
    eliminations; the cycles, segments and carry propagate them. Exclusive with a window or grid.
    ``pos_encodings`` ``"rope"`` rotates by the position in the sequence (base ``rope_theta``), ``"rope2d"`` (with
    ``attention_grid``) by the cell's row and column (:class:`agents.layers.GridRotary`), so a grid model trained on
    one padded width acts on another (:func:`train.acting.load_policy` sets ``attention_grid`` to the evaluation
    env's width); ``"learned"`` adds a learned embedding per position (fixed length). ``block="conv"`` (with
    ``attention_grid``) replaces every transformer block by a residual pair of 3x3 convolutions over the grid
    (:class:`agents.layers.ConvBlock`): a cell reads the cells within 2 steps at a fraction of a block's cost, and the
    weights are width-free. ``block="max"`` adds a max over messages from the 4 neighbours
    (:class:`agents.layers.MaxBlock`: one application can be one Bellman-Ford relaxation, as in value iteration
    networks). ``block="front"`` (:class:`agents.layers.FrontBlock`) gives the max block a reached bit in channel 0
    that spreads from learned sources through learned pass gates one cell per application, so a cell cannot be
    called reached before a path of reached cells leads to it, and in channels 1-4 the directions it was reached
    from (a breadth-first search's parent pointers, which the heads read); ``inference_halting="reached"`` then
    reads that bit. ``block="wave"`` (:class:`agents.layers.WaveBlock`) makes channel 0 a cost to the goal relaxed
    ``relax_steps`` times per application by min-plus updates over the moves its gates allow, at the times they
    give (a cell's gates read its input token and a max-pool of all of them, e.g. the city's vehicle), and channels
    1-4 the moves that attain it: a weighted, directed front for routing, its gates fitted to the oracle's costs to
    the goal (``cost`` in the batch, :func:`agents.layers.wave_gate_loss`).

    **Readout.** Heads: ``token_vocab`` classes per token, ``per_token_actions`` actions per token and
    ``global_actions`` (at least one of them > 0; :class:`OutputHeads`); ``loss`` ``"stablemax"`` / ``"softmax"``.
    ``global_readout`` ``"prefix"`` reads the global actions from slot 0; ``"acting_token"`` from the first token
    whose id is one of ``acting_tokens`` (the encoder's mark of the agent's cell, e.g. the maze's 'S': the global
    moves are that cell's moves), so a local model acts on what the agent's own cell knows; slot 0 where no token
    carries the mark.

    **Carry.** ``episode_carry`` keeps the latent state from one decision of an episode to the next (a recurrent
    policy: in a static puzzle what a decision computed, e.g. a maze's distance field, stays valid after the move,
    so each decision adds its segments to the reach instead of starting again): :meth:`HRM.predict` resumes from
    ``start`` and returns the states it ends in, and in training a halted row whose ``continues`` (batch key) is
    true keeps its carry while it takes its episode's next state.

    **Depth training** (thinking longer on larger puzzles). ``depth_training="progressive"``: in training each
    :meth:`HRM.forward` first runs a random number of segments in ``[0, depth_extra_max]`` without gradient, then
    the graded segment (Bansal et al. 2022's progressive loss on top of deep supervision): no behaviour can be tied
    to a segment count, the latent is pushed towards a fixed point that more segments keep, and the Q-head learns
    whether the action is right at every depth. Memory stays O(1) in depth (the extra segments save no
    activations). ``front_rate > 0`` (a token head for an oracle's per-cell plan, with each cell's cost to the goal
    as batch key ``cost``): after ``d`` segments since its latent was fresh (the extra ones and an episode's earlier
    decisions included), a cell within ``front_rate * d`` of the goal must give its move, one farther than twice
    that is labelled "not reached yet" (the token head's last class), and the band between is not graded (a front
    at any pace in ``[front_rate, 2 * front_rate]`` per segment fits; no counter of segments is needed). The field
    then grows as a front, a rule that stays the same at any depth, so more segments reach further on larger
    puzzles and the model can say where it does not know yet. ``blind_acting=t`` shows the recurrence token ``t``
    (e.g. the maze's floor) where the agent's mark is, so the field cannot lean on where the agent stands (only the
    heads read the mark) and, carried, its input stays the same over an episode. ``inference_halting="reached"``
    halts a decision once the token head says the acting cell is reached (compute grows with the distance to the
    goal).

    **Halting.** At most ``halt_max_steps`` segments per example in training; ``halt_exploration_prob`` is the
    chance of a random minimum number of segments (exploration). At inference ``inference_halting`` ``"q_head"``
    halts on the Q-head, ``"max_steps"`` always runs the cap. ``halt_scale`` sets each sequence's cap on segments:
    ``"fixed"`` ``halt_max_steps``; ``"tokens"`` / ``"side"`` ``halt_max_steps`` times its real (non-padding,
    id != 0) tokens / their square root (a grid's side) relative to ``halt_reference`` real tokens, never fewer than
    ``halt_max_steps``. ``halt_tolerance > 0`` also halts a sequence once a segment changes its ``z_H`` by less than
    that fraction of its norm (convergence). :data:`ACTING_FIELDS` may differ between training and evaluation.
    """

    # sizes and blocks
    vocab_size: int
    seq_len: int
    hidden_size: int = 128
    num_heads: int = 4
    expansion: float = 4.0
    H_layers: int = 2
    L_layers: int = 2
    num_puzzle_identifiers: int = 0
    puzzle_emb_len: int = 1
    # recurrence
    H_cycles: int = 2
    L_cycles: int = 2
    variant: str = "hrm"
    full_backprop: bool = False
    # attention and positions
    attention_window: int = 0
    attention_direction: str = "both"
    attention_grid: int = 0
    attention_peers: int = 0
    block: str = "attention"
    pos_encodings: str = "rope"
    rope_theta: float = 10000.0
    # readout
    token_vocab: int = 0
    per_token_actions: int = 0
    global_actions: int = 0
    global_readout: str = "prefix"
    acting_tokens: tuple[int, ...] = ()
    loss: str = "stablemax"
    # carry
    episode_carry: bool = False
    # depth training
    depth_training: str = "fixed"
    depth_extra_max: int = 0
    front_rate: float = 0.0
    relax_steps: int = 1
    blind_acting: int = 0
    # halting
    halt_max_steps: int = 8
    halt_exploration_prob: float = 0.1
    inference_halting: str = "q_head"
    halt_scale: str = "fixed"
    halt_reference: int = 0
    halt_tolerance: float = 0.0

    def __post_init__(self) -> None:
        check_ints(self, ("vocab_size", "seq_len", "hidden_size", "num_heads", "H_layers", "L_layers", "H_cycles",
                          "L_cycles", "halt_max_steps", "relax_steps"), low=1)
        check_ints(self, ("num_puzzle_identifiers", "puzzle_emb_len", "token_vocab", "per_token_actions",
                          "global_actions", "attention_window", "attention_grid", "attention_peers", "depth_extra_max",
                          "halt_reference", "blind_acting"),
                   low=0)
        for name in ("full_backprop", "episode_carry"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        check_embedding_and_heads(self)
        if not 0.0 <= self.halt_exploration_prob <= 1.0:
            raise ValueError(f"halt_exploration_prob must lie in [0, 1], got {self.halt_exploration_prob!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.inference_halting not in INFERENCE_HALTING:
            raise ValueError(f"inference_halting must be one of {INFERENCE_HALTING}, got {self.inference_halting!r}")
        if self.attention_direction not in ATTENTION_DIRECTIONS:
            raise ValueError(f"attention_direction must be one of {ATTENTION_DIRECTIONS}, got {self.attention_direction!r}")
        if self.attention_direction != "both" and not self.attention_window:
            raise ValueError("attention_direction other than 'both' needs attention_window >= 1")
        if self.attention_peers:
            self._check_peers()
        if self.block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}, got {self.block!r}")
        if self.block != "attention" and not self.attention_grid:
            raise ValueError(f"block={self.block!r} needs attention_grid >= 1 (the width of the token grid it reads)")
        if self.block == "attention" and self.attention_grid and (
                not self.attention_window or self.attention_direction != "both"):
            raise ValueError("attention_grid needs attention_window >= 1 and attention_direction 'both'")
        if self.depth_training not in DEPTH_TRAINING:
            raise ValueError(f"depth_training must be one of {DEPTH_TRAINING}, got {self.depth_training!r}")
        if self.depth_training == "progressive" and self.depth_extra_max < 1:
            raise ValueError("depth_training='progressive' needs depth_extra_max >= 1 (extra segments without gradient)")
        if isinstance(self.front_rate, bool) or not isinstance(self.front_rate, (int, float)) or not (
                0.0 <= self.front_rate < float("inf")):
            raise ValueError(f"front_rate must be a finite number >= 0, got {self.front_rate!r}")
        if self.relax_steps != 1 and self.block != "wave":
            raise ValueError(f"relax_steps applies to block='wave' (relaxations per application), got block={self.block!r}")
        if self.front_rate and self.token_vocab < 2:
            raise ValueError("front_rate > 0 needs a token head (token_vocab >= 2: the labels and 'not reached yet')")
        if self.blind_acting and not (self.acting_tokens and self.blind_acting < self.vocab_size):
            raise ValueError(f"blind_acting must be 0 (off) or a token id below vocab_size {self.vocab_size}, with "
                             f"acting_tokens to replace; got {self.blind_acting!r}")
        if self.inference_halting == "reached" and not (self.front_rate and self.acting_tokens):
            raise ValueError("inference_halting='reached' needs front_rate > 0 and acting_tokens (the cell it reads)")
        if self.halt_scale not in HALT_SCALES:
            raise ValueError(f"halt_scale must be one of {HALT_SCALES}, got {self.halt_scale!r}")
        if self.halt_scale != "fixed" and self.halt_reference < 1:
            raise ValueError(f"halt_scale={self.halt_scale!r} needs halt_reference >= 1 (the real tokens of a puzzle "
                             f"that halt_max_steps segments suffice for)")
        if isinstance(self.halt_tolerance, bool) or not isinstance(self.halt_tolerance, (int, float)) or not (
                0.0 <= self.halt_tolerance < 1.0):
            raise ValueError(f"halt_tolerance must be a number in [0, 1), got {self.halt_tolerance!r}")
        if self.puzzle_emb_len == 0 and (self.num_puzzle_identifiers > 0 or self.global_actions > 0):
            raise ValueError("puzzle_emb_len must be >= 1 when num_puzzle_identifiers or global_actions > 0")

    def _check_peers(self) -> None:
        """``ValueError`` naming ``attention_peers`` unless the tokens are one Sudoku of ``b x b`` boxes read by
        attention blocks without another locality."""
        b = self.attention_peers
        if b < 2:
            raise ValueError(f"attention_peers must be 0 (off) or a Sudoku's box side >= 2, got {b}")
        if self.seq_len != b**4:
            raise ValueError(f"attention_peers={b} needs seq_len = ({b}*{b})**2 = {b**4} (one token per cell), "
                             f"got seq_len {self.seq_len}")
        if self.block != "attention":
            raise ValueError(f"attention_peers needs block='attention', got block={self.block!r}")
        if self.attention_window or self.attention_grid:
            raise ValueError("attention_peers excludes attention_window and attention_grid (set them to 0)")

    @property
    def has_policy_head(self) -> bool:
        return self.per_token_actions > 0 or self.global_actions > 0

    def num_actions(self, seq_len: int | None = None) -> int:
        """Size of the policy action space for inputs of ``seq_len`` tokens (default: the configured one)."""
        return (self.seq_len if seq_len is None else seq_len) * self.per_token_actions + self.global_actions

    def with_(self, **changes) -> HRMConfig:
        """A validated copy with some fields changed."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown HRMConfig fields: {sorted(unknown)}")
        return replace(self, **changes)


def check_ints(config: object, names: tuple[str, ...], low: int) -> None:
    """``ValueError`` naming the first of ``names`` that is not an int >= ``low`` (0 or 1)."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be a {'positive' if low else 'non-negative'} int, got {value!r}")


def check_embedding_and_heads(config: HRMConfig | BaselineConfig) -> None:
    """Check the fields :class:`InputEmbedding` and :class:`OutputHeads` read (HRM and baselines alike): block
    width, positions, loss and readout; ``ValueError`` naming the field."""
    if not config.expansion > 0:
        raise ValueError(f"expansion must be > 0, got {config.expansion!r}")
    if config.hidden_size % config.num_heads:
        raise ValueError(f"hidden_size ({config.hidden_size}) must be divisible by num_heads ({config.num_heads})")
    if config.pos_encodings not in POS_ENCODINGS:
        raise ValueError(f"pos_encodings must be one of {POS_ENCODINGS}, got {config.pos_encodings!r}")
    if config.pos_encodings == "rope" and (config.hidden_size // config.num_heads) % 2:
        raise ValueError("hidden_size / num_heads must be even for pos_encodings='rope'")
    if config.pos_encodings == "rope2d" and ((config.hidden_size // config.num_heads) % 4 or not config.attention_grid):
        raise ValueError("pos_encodings='rope2d' needs attention_grid >= 1 and hidden_size / num_heads divisible "
                         "by 4")
    if config.attention_grid and config.seq_len % config.attention_grid:
        raise ValueError(f"attention_grid must divide seq_len ({config.seq_len}) into grid rows, "
                         f"got {config.attention_grid}")
    if config.loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {config.loss!r}")
    if config.global_readout not in GLOBAL_READOUTS:
        raise ValueError(f"global_readout must be one of {GLOBAL_READOUTS}, got {config.global_readout!r}")
    if any(isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < config.vocab_size for t in config.acting_tokens):
        raise ValueError(f"acting_tokens must be token ids in [0, {config.vocab_size}), got {config.acting_tokens!r}")
    if config.global_readout == "acting_token" and not (config.acting_tokens and config.global_actions):
        raise ValueError("global_readout='acting_token' needs global actions and an encoder with acting_tokens "
                         "(maze, city)")
    if config.token_vocab == 0 and config.per_token_actions == 0 and config.global_actions == 0:
        raise ValueError("one head is required: token_vocab, per_token_actions or global_actions must be > 0")


class InputEmbedding(nn.Module):
    """Token embedding (scaled by sqrt(hidden)) with prefix slots and positions.

    Returns the embedded sequence of length ``puzzle_emb_len + T`` and rotary tables (or None). With rope
    nothing depends on ``T``, so a model trained at one length runs at another; rope2d rotates by the cells'
    rows and columns on the ``attention_grid`` (then nothing depends on the grid's width either).
    """

    def __init__(self, config: HRMConfig | BaselineConfig):
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        std = 1.0 / math.sqrt(hidden)
        self.tokens = nn.Embedding(config.vocab_size, hidden)
        trunc_normal_(self.tokens.weight, std)
        self.puzzle: nn.Embedding | None = None
        self.prefix: nn.Parameter | None = None
        if config.num_puzzle_identifiers > 0:
            self.puzzle = nn.Embedding(config.num_puzzle_identifiers, config.puzzle_emb_len * hidden)
            nn.init.zeros_(self.puzzle.weight)
        elif config.puzzle_emb_len > 0:
            self.prefix = nn.Parameter(trunc_normal_(torch.empty(config.puzzle_emb_len, hidden), std))
        self.positions: nn.Embedding | None = None
        self.rotary: Rotary | GridRotary | None = None
        if config.pos_encodings == "learned":
            self.positions = nn.Embedding(config.puzzle_emb_len + config.seq_len, hidden)
            trunc_normal_(self.positions.weight, std)
        elif config.pos_encodings == "rope2d":
            self.rotary = GridRotary(hidden // config.num_heads, config.rope_theta)
        else:
            self.rotary = Rotary(hidden // config.num_heads, config.rope_theta)

    def forward(self, data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        config = self.config
        inputs = data["tokens"]
        if inputs.ndim != 2:
            raise ValueError(f"tokens must have shape (batch, seq_len), got {tuple(inputs.shape)}")
        x = self.tokens(inputs)
        batch = x.shape[0]
        if self.puzzle is not None:
            ids = data.get("puzzle_identifiers")
            ids = torch.zeros(batch, dtype=torch.long, device=x.device) if ids is None else ids.long()
            prefix = self.puzzle(ids).view(batch, config.puzzle_emb_len, config.hidden_size)
            x = torch.cat([prefix.to(x.dtype), x], dim=1)
        elif self.prefix is not None:
            x = torch.cat([self.prefix.expand(batch, -1, -1), x], dim=1)
        rotary = None
        if self.positions is not None:
            if x.shape[1] > self.positions.num_embeddings:
                raise ValueError(f"tokens longer than seq_len={config.seq_len} need pos_encodings='rope'")
            x = 0.7071067811865476 * (x + self.positions.weight[: x.shape[1]])
        elif isinstance(self.rotary, GridRotary):
            rotary = self.rotary(x.shape[1] - inputs.shape[1], inputs.shape[1], config.attention_grid)
        else:
            rotary = self.rotary(x.shape[1])
        return math.sqrt(config.hidden_size) * x, rotary


def is_marked(tokens: torch.Tensor, marks: tuple[int, ...]) -> torch.Tensor:
    """Bool mask of the tokens whose id is one of ``marks`` (e.g. the agent's cell: ``acting_tokens``)."""
    return torch.isin(tokens, torch.tensor(marks, device=tokens.device))


class OutputHeads(nn.Module):
    """Token head and size-independent policy head over features ``z`` of shape (B, prefix + T, hidden).

    Outputs ``logits`` (B, T, token_vocab) and/or ``policy_logits`` (B, T * per_token_actions + global_actions):
    one shared linear map per token gives that token's K actions; the globals read slot 0, or with
    ``global_readout="acting_token"`` the first token marked by ``acting_tokens`` (slot 0 where none is).
    """

    def __init__(self, config: HRMConfig | BaselineConfig):
        super().__init__()
        self.prefix_len = config.puzzle_emb_len
        hidden = config.hidden_size
        self.token_head = linear(hidden, config.token_vocab) if config.token_vocab else None
        self.per_token = linear(hidden, config.per_token_actions) if config.per_token_actions else None
        self.global_head = linear(hidden, config.global_actions) if config.global_actions else None
        self.marks = config.acting_tokens
        self.acting_tokens = config.acting_tokens if config.global_readout == "acting_token" else ()
        # block="front" with front_rate: the token head's classes are "reached, move m" and "not reached yet", with
        # the front bit (channel 0) as the probability of being reached
        self.front = getattr(config, "block", "") == "front" and bool(getattr(config, "front_rate", 0))

    def acting_cell(self, inputs: torch.Tensor, marks: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) index of each sequence's first token whose id is in ``marks`` (0 where none) and whether it has one."""
        marked = is_marked(inputs, marks)
        return marked.int().argmax(1), marked.any(1)

    def global_features(self, z: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """(B, hidden): slot 0, or the state of each sequence's first acting token."""
        if not self.acting_tokens:
            return z[:, 0]
        cell, found = self.acting_cell(inputs, self.acting_tokens)
        at_agent = z[torch.arange(z.shape[0], device=z.device), self.prefix_len + cell]
        return torch.where(found[:, None], at_agent, z[:, 0])

    def reached(self, out: dict[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """(B,) bool: the acting cell is reached: its front bit is set (``reach_bit``, ``block="front"``), or else the
        token head's class there is not its last ("not reached yet", ``front_rate``); true where no token carries
        the mark."""
        cell, found = self.acting_cell(inputs, self.marks)
        rows = torch.arange(inputs.shape[0], device=inputs.device)
        if "reach_bit" in out:
            return (out["reach_bit"][rows, cell] > 0.5) | ~found
        logits = out["logits"]
        return (logits[rows, cell].argmax(-1) != logits.shape[-1] - 1) | ~found

    def forward(self, z: torch.Tensor, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        tokens = z[:, self.prefix_len:]
        out: dict[str, torch.Tensor] = {}
        if self.token_head is not None:
            out["logits"] = self.token_head(tokens)
            if self.front:  # log-probabilities: p x P(move), 1 - p
                p = 1e-3 + (1.0 - 2e-3) * tokens[..., :1].float()  # p: the bit, kept off 0 and 1 (a wrong bit's gradient)
                moves = torch.log_softmax(out["logits"][..., :-1].float(), -1) + p.log()
                out["logits"] = torch.cat([moves, (1.0 - p).log()], dim=-1).to(tokens.dtype)
        parts = []
        if self.per_token is not None:
            parts.append(self.per_token(tokens).flatten(1))
        if self.global_head is not None:
            parts.append(self.global_head(self.global_features(z, inputs)))
        if parts:
            out["policy_logits"] = torch.cat(parts, dim=1)
        return out


@dataclass
class HRMCarry:
    """State kept across segments (and optimizer steps): latent states, step counters, current examples."""

    z_H: torch.Tensor
    z_L: torch.Tensor
    steps: torch.Tensor
    halted: torch.Tensor
    data: dict[str, torch.Tensor]
    #: Segments run since the latent was fresh (extra progressive ones and an episode's earlier decisions included).
    depth: torch.Tensor | None = None


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a (B,) mask over the trailing dimensions of ``like``."""
    return mask.view(-1, *([1] * (like.ndim - 1)))


class HRM(nn.Module):
    """HRM / TRM with ACT. See the module docstring for the segment semantics."""

    def __init__(self, config: HRMConfig):
        super().__init__()
        self.config = config
        args = (config.hidden_size, config.num_heads, config.expansion)
        self.embed = InputEmbedding(config)
        grid = {"block": config.block, "prefix_len": config.puzzle_emb_len, "width": config.attention_grid,
                "relax_steps": config.relax_steps}
        self.L_level = ReasoningModule(config.L_layers, *args, **grid)
        # TRM: one shared network; HRM: a separate high-level module.
        self.H_level = self.L_level if config.variant == "trm" else ReasoningModule(config.H_layers, *args, **grid)
        self.heads = OutputHeads(config)
        self.q_head = linear(config.hidden_size, 2, bias=True)
        with torch.no_grad():
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)
        self.register_buffer("H_init", trunc_normal_(torch.empty(config.hidden_size), 1.0))
        self.register_buffer("L_init", trunc_normal_(torch.empty(config.hidden_size), 1.0))
        if config.block == "front":  # a fresh latent has reached no cell; the gates read each input token alone
            self.H_init[: FrontBlock.MARKS] = self.L_init[: FrontBlock.MARKS] = 0.0
            self.front_gates = linear(config.hidden_size, 2, bias=True)
            with torch.no_grad():  # no sources and half-open passes at first: both are learned
                self.front_gates.bias.copy_(torch.tensor([-4.0, 0.0]))
        if config.block == "wave":  # no cell reached at first; the gates read a token and the puzzle's max-pool
            self.H_init[0] = self.L_init[0] = WaveBlock.UNREACHED
            self.H_init[1 : WaveBlock.MARKS] = self.L_init[1 : WaveBlock.MARKS] = 0.0
            self.wave_gates = nn.Sequential(linear(2 * config.hidden_size, 2 * config.hidden_size, bias=True),
                                            nn.SiLU(), linear(2 * config.hidden_size, 7, bias=True))
            with torch.no_grad():
                self.wave_gates[2].bias.copy_(torch.tensor([-4.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0]))

    # ----------------------------------------------------------------- segment
    def _segment(
        self, z_H: torch.Tensor, z_L: torch.Tensor, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One segment: ``H_cycles`` x (``L_cycles`` L updates, one H update); a no-grad phase, then a grad phase.

        The gradient phase is the trailing updates: the last L and the last H update (HRM's one-step gradient),
        the whole last recursion (TRM), or every update (``full_backprop``)."""
        config = self.config
        updates = (["L"] * config.L_cycles + ["H"]) * config.H_cycles
        if config.full_backprop:
            with_grad = len(updates)
        elif config.variant == "trm":
            with_grad = config.L_cycles + 1
        else:
            with_grad = 2
        mask: Mask = None
        if config.block == "front":
            mask = self._front_gates(x)
        elif config.block == "wave":
            mask = self._wave_gates(x)
        elif config.block != "attention":
            pass  # grid blocks read their neighbours themselves
        elif config.attention_peers:
            mask = peer_attention_mask(x.shape[1], config.puzzle_emb_len, config.attention_peers, x.device)
        elif config.attention_grid:
            mask = GridWindow(config.puzzle_emb_len, config.attention_grid, config.attention_window)
        elif config.attention_window:
            mask = local_attention_mask(x.shape[1], config.puzzle_emb_len, config.attention_window, x.device,
                                        config.attention_direction)

        def run(levels: list[str], z_H: torch.Tensor, z_L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            for level in levels:
                if level == "L":
                    z_L = self.L_level(z_L, z_H + x, rotary, mask)
                else:
                    z_H = self.H_level(z_H, z_L, rotary, mask)
            return z_H, z_L

        split = len(updates) - with_grad
        with torch.no_grad():
            z_H, z_L = run(updates[:split], z_H, z_L)
        return run(updates[split:], z_H, z_L)

    def _embed(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """The recurrence's input: ``batch`` embedded, the acting tokens shown as ``blind_acting`` when that is set
        (the heads still read the marked cell from the real tokens)."""
        if self.config.blind_acting:
            tokens = batch["tokens"]
            hidden = torch.where(is_marked(tokens, self.config.acting_tokens), self.config.blind_acting, tokens)
            batch = {**batch, "tokens": hidden}
        x, rotary = self.embed(batch)
        if self.config.block in ("front", "wave"):  # the marks: only the blocks' gates set them
            marks = FrontBlock.MARKS if self.config.block == "front" else WaveBlock.MARKS
            x = torch.cat([torch.zeros_like(x[..., :marks]), x[..., marks:]], dim=-1)
        return x, rotary

    def _front_gates(self, x: torch.Tensor) -> FrontGates:
        """``block="front"``: each grid cell's source and pass gates, a map of its input embedding alone."""
        cells = x[:, self.config.puzzle_emb_len:]
        gates = torch.sigmoid(self.front_gates(cells)).transpose(1, 2)
        gates = gates.reshape(x.shape[0], 2, cells.shape[1] // self.config.attention_grid, self.config.attention_grid)
        return FrontGates(source=gates[:, :1], passable=gates[:, 1:])

    def _wave_gates(self, x: torch.Tensor) -> WaveGates:
        """``block="wave"``: each grid cell's gates, a map of its input embedding and the max-pool of all of them
        (what holds for the whole puzzle, e.g. the vehicle on its start cell)."""
        cells = x[:, self.config.puzzle_emb_len:]
        context = cells.amax(1, keepdim=True).expand_as(cells)
        raw = self.wave_gates(torch.cat([cells, context], dim=-1)).float().transpose(1, 2)
        raw = raw.reshape(x.shape[0], 7, cells.shape[1] // self.config.attention_grid, self.config.attention_grid)
        gates = torch.sigmoid(raw)
        return WaveGates(source=gates[:, :1], passable=gates[:, 1:2], cost=F.softplus(raw[:, 2:3]), exits=gates[:, 3:])

    def _read(self, z_H: torch.Tensor, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.config.block == "wave":  # the heads read a reached cell's cost to go, 0 where none is known yet
            grid = z_H[:, self.config.puzzle_emb_len:]
            cost = grid[..., :1]
            seen = torch.where(cost < WaveBlock.UNREACHED / 2, cost, torch.zeros_like(cost))
            out = self.heads(torch.cat([z_H[:, : self.config.puzzle_emb_len],
                                        torch.cat([seen, grid[..., 1:]], dim=-1)], dim=1), inputs)
            out["cost_to_go"], out["best_moves"] = cost[..., 0], grid[..., 1 : WaveBlock.MARKS]
        else:
            out = self.heads(z_H, inputs)
        out["summary"] = z_H[:, 0]
        if self.config.block == "front":  # the front's bit and the directions each cell was reached from
            out["reach_bit"] = z_H[:, self.config.puzzle_emb_len:, 0]
            out["came_from"] = z_H[:, self.config.puzzle_emb_len:, 1 : FrontBlock.MARKS]
        q = self.q_head(z_H[:, 0]).float()
        out["q_halt"], out["q_continue"] = q[:, 0], q[:, 1]
        return out

    def _wants_halt(self, q_halt: torch.Tensor, q_continue: torch.Tensor) -> torch.Tensor:
        return q_halt > 0 if self.config.variant == "trm" else q_halt > q_continue

    # ----------------------------------------------------------------- public API
    def initial_carry(self, batch: dict[str, torch.Tensor]) -> HRMCarry:
        """A carry whose every sequence is halted, so the first :meth:`forward` loads ``batch``."""
        inputs = batch["tokens"]
        size, length = inputs.shape[0], self.config.puzzle_emb_len + inputs.shape[1]
        shape = (size, length, self.config.hidden_size)
        return HRMCarry(
            z_H=self.H_init.expand(shape).clone(),
            z_L=self.L_init.expand(shape).clone(),
            steps=torch.zeros(size, dtype=torch.long, device=inputs.device),
            halted=torch.ones(size, dtype=torch.bool, device=inputs.device),
            data={k: torch.zeros_like(v) for k, v in batch.items()},
            depth=torch.zeros(size, dtype=torch.long, device=inputs.device),
        )

    def forward(self, carry: HRMCarry, batch: dict[str, torch.Tensor]) -> tuple[HRMCarry, dict[str, torch.Tensor]]:
        """Run one segment; halted rows of ``carry`` restart on the matching rows of ``batch``.

        A halted row whose ``batch["continues"]`` is true (``episode_carry``: the batch row is the next state
        of the same episode) takes the new input but keeps its latent state.

        Outputs: head logits, ``q_halt``, ``q_continue`` (logits), ``target_q_continue`` (HRM, training,
        ``halt_max_steps > 1``), ``halted`` and ``steps`` (after this segment). The loss must be computed
        against ``new_carry.data`` (the examples this segment worked on).
        """
        config = self.config
        halted = carry.halted
        data = {k: torch.where(_rows(halted, v), batch[k], carry.data[k]) for k, v in carry.data.items()}
        fresh = halted & ~batch["continues"].bool() if "continues" in batch else halted
        z_H = torch.where(_rows(fresh, carry.z_H), self.H_init, carry.z_H)
        z_L = torch.where(_rows(fresh, carry.z_L), self.L_init, carry.z_L)
        steps = torch.where(halted, 0, carry.steps)
        depth = torch.zeros_like(steps) if carry.depth is None else torch.where(fresh, 0, carry.depth)
        x, rotary = self._embed(data)
        if self.training and config.depth_training == "progressive":
            extra = int(torch.randint(0, config.depth_extra_max + 1, ()))
            with torch.no_grad():  # a random depth before the graded segment; it saves no activations
                for _ in range(extra):
                    z_H, z_L = self._segment(z_H, z_L, x, rotary)
            depth = depth + extra
        z_H, z_L = self._segment(z_H, z_L, x, rotary)
        depth = depth + 1
        out = self._read(z_H, data["tokens"])
        if config.front_rate:
            out["reach"] = config.front_rate * depth.float()
            if config.block == "front":  # the gates, fitted to the cells' costs to the goal (task_loss)
                gates = self._front_gates(x)
                out["front_source"], out["front_passable"] = gates.source.flatten(1), gates.passable.flatten(1)
        if config.block == "wave" and self.training:  # the gates, fitted to the cells' costs to the goal (task_loss)
            gates = self._wave_gates(x)
            out.update(wave_source=gates.source, wave_passable=gates.passable, wave_cost=gates.cost,
                       wave_exits=gates.exits)
        with torch.no_grad():
            steps = steps + 1
            last = steps >= config.halt_max_steps
            new_halted = last
            if config.halt_max_steps > 1:
                new_halted = last | self._wants_halt(out["q_halt"], out["q_continue"])
                if self.training:
                    explore = torch.rand_like(out["q_halt"]) < config.halt_exploration_prob
                    minimum = torch.randint_like(steps, 2, config.halt_max_steps + 1) * explore
                    new_halted = new_halted & (steps >= minimum)
                    if config.variant == "hrm":
                        next_q = self._read(self._segment(z_H.detach(), z_L.detach(), x, rotary)[0], data["tokens"])
                        best = torch.maximum(next_q["q_halt"], next_q["q_continue"])
                        best = torch.where(last, next_q["q_halt"], best)
                        out["target_q_continue"] = torch.sigmoid(best)
        out["halted"], out["steps"] = new_halted, steps
        if not config.full_backprop:
            z_H, z_L = z_H.detach(), z_L.detach()
        return HRMCarry(z_H, z_L, steps, new_halted, data, depth), out

    def segment_caps(self, tokens: torch.Tensor) -> torch.Tensor:
        """Each sequence's cap on inference segments (B,): ``halt_max_steps``, scaled by ``halt_scale`` with the
        sequence's real (non-padding) tokens against ``halt_reference``, never below ``halt_max_steps``."""
        config = self.config
        caps = torch.full((tokens.shape[0],), config.halt_max_steps, dtype=torch.long, device=tokens.device)
        if config.halt_scale == "fixed":
            return caps
        ratio = (tokens != 0).sum(1).double() / config.halt_reference
        if config.halt_scale == "side":
            ratio = ratio.sqrt()
        return torch.maximum(caps, torch.ceil(config.halt_max_steps * ratio - 1e-9).long())

    def predict(self, batch: dict[str, torch.Tensor], grad: bool = False,
                start: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Run segments until every sequence halted (Q-head, no exploration, convergence with ``halt_tolerance``)
        or reached its cap (:meth:`segment_caps`: ``halt_max_steps``, scaled with the puzzle by ``halt_scale``).

        With ``inference_halting="max_steps"`` every sequence runs ``halt_max_steps`` segments (the reference
        HRM's evaluation; the Q-head then only matters in training).

        Returns each sequence's head outputs from the segment at which it halted, ``summary`` (its z_H at
        slot 0, e.g. for a value head) and ``segments`` (B,). The search runs under no_grad; with ``grad``
        each sequence's halting segment is re-run from its stored entry state with gradient (the one-step
        gradient of acting, used by :class:`agents.policy.HRMPolicy`).

        ``start``: the ``(z_H, z_L)`` to begin from instead of ``H_init`` / ``L_init`` (``episode_carry``: the
        previous decision's). With ``episode_carry`` the result holds ``z_H`` / ``z_L``, the states each sequence
        halted in, to pass as the next decision's ``start``.
        """
        config = self.config
        with torch.no_grad():
            if start is None:
                carry = self.initial_carry(batch)
                z_H, z_L = carry.z_H, carry.z_L
            else:
                z_H, z_L = start
                expected = (batch["tokens"].shape[0], self.config.puzzle_emb_len + batch["tokens"].shape[1],
                            self.config.hidden_size)
                if tuple(z_H.shape) != expected or tuple(z_L.shape) != expected:
                    raise ValueError(f"start states must have shape {expected}, got {tuple(z_H.shape)} and "
                                     f"{tuple(z_L.shape)}")
            entry_H, entry_L = z_H, z_L
            x, rotary = self._embed(batch)
            done = torch.zeros(z_H.shape[0], dtype=torch.bool, device=z_H.device)
            segments = torch.zeros(z_H.shape[0], dtype=torch.long, device=z_H.device)
            caps = self.segment_caps(batch["tokens"])
            result: dict[str, torch.Tensor] = {}
            for step in range(1, int(caps.max()) + 1):
                new_H, new_L = self._segment(z_H, z_L, x, rotary)
                out = self._read(new_H, batch["tokens"])
                if config.episode_carry:
                    out["z_H"], out["z_L"] = new_H, new_L
                wants = step >= caps
                if config.inference_halting == "q_head":
                    wants = wants | self._wants_halt(out["q_halt"], out["q_continue"])
                elif config.inference_halting == "reached":
                    wants = wants | self.heads.reached(out, batch["tokens"])
                if config.halt_tolerance > 0:
                    change = (new_H - z_H).flatten(1).norm(dim=1) / z_H.flatten(1).norm(dim=1).clamp_min(1e-12)
                    wants = wants | (change < config.halt_tolerance)
                halt_now = ~done & wants
                entry_H = torch.where(_rows(halt_now, z_H), z_H, entry_H)
                entry_L = torch.where(_rows(halt_now, z_L), z_L, entry_L)
                for key, value in out.items():
                    old = result.get(key, value)
                    result[key] = torch.where(_rows(halt_now, value), value, old)
                segments = torch.where(halt_now, step, segments)
                done = done | halt_now
                z_H, z_L = new_H, new_L
                if bool(done.all()):
                    break
        if grad:
            x, rotary = self._embed(batch)
            result = {**result, **self._read(self._segment(entry_H, entry_L, x, rotary)[0], batch["tokens"])}
        result["segments"] = segments
        return result


# --------------------------------------------------------------------- losses
def log_probs(logits: torch.Tensor, kind: str, legal: torch.Tensor | None = None) -> torch.Tensor:
    """Log-probabilities over the last axis in float64 (stablemax) or float32 (softmax); illegal = -inf.

    Stablemax: ``p_i = s(x_i) / sum_j s(x_j)`` with ``s(x) = x + 1`` for ``x >= 0`` and ``1 / (1 - x)`` else.
    """
    if kind == "stablemax":
        x = logits.double()
        scores = torch.where(x >= 0, x + 1, 1 / (1 - torch.clamp(x, max=0)))
        logits = scores.log()
    elif kind == "softmax":
        logits = logits.float()
    else:
        raise ValueError(f"kind must be one of {LOSSES}, got {kind!r}")
    if legal is not None:
        logits = logits.masked_fill(~legal.bool(), float("-inf"))
    return logits.log_softmax(-1)


def token_loss(
    logits: torch.Tensor, labels: torch.Tensor, kind: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sequence mean CE over non-ignored tokens, per-token correctness and the valid-token mask."""
    valid = labels != IGNORE_LABEL
    targets = torch.where(valid, labels, 0)
    logp = log_probs(logits, kind).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    count = valid.sum(-1).clamp_min(1)
    loss = -(torch.where(valid, logp, 0).sum(-1) / count)
    correct = valid & (logits.argmax(-1) == targets)
    return loss, correct, valid


def set_loss(
    logits: torch.Tensor, optimal: torch.Tensor, kind: str, legal: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``-log sum_{a in optimal} p(a)`` with illegal actions masked out; and whether argmax is optimal."""
    optimal = optimal.bool()
    if legal is not None:
        optimal = optimal & legal.bool()
    logp = log_probs(logits, kind, legal)
    loss = -torch.logsumexp(logp.masked_fill(~optimal, float("-inf")), dim=-1)
    choice = logp.argmax(-1)
    return loss, optimal.gather(-1, choice.unsqueeze(-1)).squeeze(-1)


def task_loss(
    outputs: dict[str, torch.Tensor], data: dict[str, torch.Tensor], kind: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Per-sequence task loss, sequence correctness, accuracy and action correctness (token or policy task, or both).

    Token task (``labels`` in ``data``): CE per sequence, correct = every valid token right, accuracy =
    fraction of right tokens. Policy task (``optimal``): set loss, correct = argmax legal action is optimal.
    Move field (``field``, (B, T, K) optimal moves per token, e.g. a route's every cell towards the goal): the set
    loss of each token's K per-token actions, averaged over the tokens that have an optimal move; correct = all
    right. With ``cost`` (B, T) also a smooth-L1 regression of each token's cost to the goal (NaN: ignored) by the
    per-token channel after the K moves. With ``reach`` (``front_rate``) the token labels follow the front, and with
    ``front_source`` / ``front_passable`` (``block="front"``) the gates are fitted to the costs: a cell with a label
    (it can reach the goal) passable and no source, one that cannot (inf) impassable and no source; the goal, with no
    label, learns to be the source from the front's labels alone. With ``wave_*`` gates (``block="wave"``) and ``cost``
    the gates are fitted by :func:`agents.layers.wave_gate_loss`.
    With both, correctness needs both, accuracy is the token one and the last value (``None`` without a policy
    task) says whether the action alone was optimal.
    """
    losses, seq_correct = [], []
    accuracy = action_correct = None
    if "labels" in data:
        labels = data["labels"]
        if "reach" in outputs:  # front_rate: cells beyond the front are "not reached yet", the head's last class
            if "cost" not in data:
                raise ValueError("front_rate > 0 needs each token's cost to the goal (batch key 'cost')")
            cost, reach = data["cost"].float(), outputs["reach"][:, None]
            labelled = labels != IGNORE_LABEL
            labels = torch.where(labelled & (cost > reach), IGNORE_LABEL, labels)  # may be reached: not graded
            labels = torch.where(labelled & (cost > 2 * reach) | torch.isinf(cost), outputs["logits"].shape[-1] - 1,
                                 labels)  # never reached: a cell with no path to the goal (a wall) too
            if "front_source" in outputs:  # a cell that can reach the goal lets the front in and is no source; one
                known = labelled | torch.isinf(cost)  # that cannot (a wall) lets nothing in
                gates = F.binary_cross_entropy(outputs["front_source"].float().clamp(1e-6, 1 - 1e-6),
                                               torch.zeros_like(cost), reduction="none")
                gates = gates + F.binary_cross_entropy(outputs["front_passable"].float().clamp(1e-6, 1 - 1e-6),
                                                       labelled.float(), reduction="none")
                losses.append(torch.where(known, gates, 0).sum(-1) / known.sum(-1).clamp_min(1))
        loss, correct, valid = token_loss(outputs["logits"], labels, kind)
        losses.append(loss)
        seq_correct.append((correct | ~valid).all(-1))
        accuracy = correct.sum(-1) / valid.sum(-1).clamp_min(1)
    if "optimal" in data:
        loss, action_correct = set_loss(outputs["policy_logits"], data["optimal"], kind, data.get("action_mask"))
        losses.append(loss)
        seq_correct.append(action_correct)
    if "field" in data:  # a per-token move field (B, T, K): each token's set loss, averaged over the tokens with one
        field = data["field"].bool()
        cells = field.any(-1)
        channels = outputs["policy_logits"].view(*field.shape[:2], -1)
        loss, right = set_loss(channels[..., : field.shape[-1]], field, kind)
        count = cells.sum(-1).clamp_min(1)
        losses.append(torch.where(cells, loss, 0).sum(-1) / count)
        seq_correct.append((right | ~cells).all(-1))
        if "cost" in data:  # (B, T) cost to the goal (NaN: none), regressed by the channel after the K moves
            cost = data["cost"].float()
            if "wave_cost" in outputs:  # block="wave": its gates fitted to the same costs and moves
                gates = WaveGates(*(outputs[f"wave_{k}"] for k in ("source", "passable", "cost", "exits")))
                moves = field.permute(2, 0, 1).reshape(4, *gates.cost.shape)
                losses.append(wave_gate_loss(gates, cost.view_as(gates.cost), moves))
            known = ~torch.isnan(cost)
            error = F.smooth_l1_loss(channels[..., field.shape[-1]].float(), torch.nan_to_num(cost), reduction="none")
            losses.append(torch.where(known, error, 0).sum(-1) / known.sum(-1).clamp_min(1))
    if "wave_cost" in outputs and not ("field" in data and "cost" in data):
        raise ValueError("block='wave' fits its gates to each token's cost to the goal and optimal moves: the batch "
                         "needs 'cost' and 'field' (train.supervised with seq2seq.field=true seq2seq.cost=true)")
    if not losses:
        raise ValueError("data must hold 'labels' (token task) or 'optimal' (policy task)")
    is_correct = torch.stack(seq_correct).all(0)
    accuracy = is_correct.float() if accuracy is None else accuracy
    return torch.stack(losses).sum(0).float(), is_correct, accuracy, action_correct


def act_loss(
    outputs: dict[str, torch.Tensor], data: dict[str, torch.Tensor], config: HRMConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss (mean over the batch) = task loss + 0.5 * (q_halt BCE + q_continue BCE), and metrics.

    ``q_halt`` is trained against the sequence being correct (see :func:`task_loss`), ``q_continue`` against
    ``target_q_continue`` when present. Metrics are means over the sequences that halted in this segment
    (``count`` of them): accuracy, exact_accuracy, q_halt_accuracy, steps; with a token and a policy task also
    action_accuracy (the policy head alone).
    """
    loss, is_correct, accuracy, action_correct = task_loss(outputs, data, config.loss)
    q_halt_loss = F.binary_cross_entropy_with_logits(outputs["q_halt"], is_correct.float(), reduction="none")
    total = loss + 0.5 * q_halt_loss
    metrics = {"lm_loss": loss.mean().detach(), "q_halt_loss": q_halt_loss.mean().detach()}
    if "target_q_continue" in outputs:
        q_cont_loss = F.binary_cross_entropy_with_logits(
            outputs["q_continue"], outputs["target_q_continue"], reduction="none"
        )
        total = total + 0.5 * q_cont_loss
        metrics["q_continue_loss"] = q_cont_loss.mean().detach()
    with torch.no_grad():
        halted = outputs["halted"]
        count = halted.sum()
        denom = count.clamp_min(1)
        metrics.update(
            count=count,
            accuracy=(accuracy * halted).sum() / denom,
            exact_accuracy=(is_correct & halted).sum() / denom,
            q_halt_accuracy=(((outputs["q_halt"] >= 0) == is_correct) & halted).sum() / denom,
            steps=(outputs["steps"] * halted).sum() / denom,
        )
        if "labels" in data and action_correct is not None:
            metrics["action_accuracy"] = (action_correct & halted).sum() / denom
    return total.mean(), metrics
