"""train.models: model configs from an env's encoder, their errors, fit checks, the GNN's token graph."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

from agents.baselines import GNNBaseline
from hrm_envs.encoding import encoder_for
from train.learner import Learner
from train.models import check_fits, model_config, token_adjacency

torch.set_num_threads(1)  # tiny models: one thread is fastest, and the machine is shared


def test_model_config_takes_acting_tokens_from_the_encoder():
    """Maze and city mark the agent's cell, Hanoi nothing: ``global_readout=acting_token`` works where marked."""
    maze = encoder_for(gym.make("hrm/Maze-v0", size=7, max_size=7))
    config = model_config({"name": "hrm", "global_readout": "acting_token"}, maze)
    assert config.acting_tokens == (3,) and config.global_readout == "acting_token"  # the maze's 'S'
    city = encoder_for(gym.make("hrm/CityRouting-v0", size=10, max_size=10))
    assert model_config({"name": "hrm"}, city).acting_tokens == tuple(range(102, 122))
    hanoi = encoder_for(gym.make("hrm/Hanoi-v0", num_disks=3))
    with pytest.raises(ValueError, match="acting_tokens"):
        model_config({"name": "hrm", "global_readout": "acting_token"}, hanoi)
    with pytest.raises(ValueError, match=r"must not set \['acting_tokens'\]"):
        model_config({"name": "hrm", "acting_tokens": [3]}, maze)


def test_model_config_errors_name_the_key(encoder, model_cfg):
    with pytest.raises(ValueError, match="model.name must be one of"):
        model_config({"name": "rnn"}, encoder)
    with pytest.raises(ValueError, match=r"must not set \['seq_len'\]"):
        model_config({"name": "hrm", "seq_len": 4}, encoder)
    with pytest.raises(ValueError, match=r"unknown HRMConfig fields: \['hiden_size'\]"):
        model_config({"name": "hrm", "hiden_size": 4}, encoder)
    with pytest.raises(ValueError, match="model.depth applies to"):
        model_config({"name": "hrm", "depth": 2}, encoder)
    with pytest.raises(ValueError, match="seq2seq_vocab_size"):
        model_config({"name": "hrm"}, encoder, task="tokens")
    config = model_config(model_cfg("trm"), encoder)
    assert config.variant == "trm" and config.num_actions() == 3 * 5 + 1 and config.seq_len == 5
    with pytest.raises(ValueError, match="has 31 actions, the model's action layout has 16"):
        check_fits(config, num_actions=31)
    with pytest.raises(ValueError, match="token ids up to 10"):
        check_fits(config, vocab=11)
    with pytest.raises(ValueError, match="token_labels must be a non-negative int"):
        model_config({"name": "hrm"}, encoder, token_labels=-1)
    with pytest.raises(ValueError, match="apply to task='policy' only"):
        model_config({"name": "hrm"}, encoder, task="tokens", token_labels=3)
    both = model_config(model_cfg("hrm"), encoder, token_labels=3)
    assert both.token_vocab == 3 and both.num_actions() == config.num_actions()


def test_token_graph_is_a_grid_for_square_layouts_else_complete(encoder, model_cfg):
    grid = token_adjacency(9)[0]
    assert grid.sum().item() == 24 and grid[4].sum().item() == 4 and grid[0, 1] == 1 and grid[0, 4] == 0
    complete = token_adjacency(5)[0]
    assert complete.sum().item() == 20 and complete.diagonal().sum() == 0
    assert isinstance(Learner(model_cfg("gnn"), {}, encoder).module, GNNBaseline)


def test_attention_peers_fits_the_sudoku_encoders():
    """The Sudoku encoders give one token per cell (16 / 81), the layout ``attention_peers`` 2 / 3 reads; a box that
    does not match the encoder's grid is refused naming the key."""
    for box in (2, 3):
        sudoku = encoder_for(gym.make("hrm/Sudoku-v0", box=box))
        for task in ("policy", "tokens"):
            config = model_config({"name": "trm", "attention_peers": box}, sudoku, task=task)
            assert (config.attention_peers, config.seq_len) == (box, box**4)
    with pytest.raises(ValueError, match=r"attention_peers=3 needs seq_len .* got seq_len 16"):
        model_config({"name": "hrm", "attention_peers": 3}, encoder_for(gym.make("hrm/Sudoku-v0", box=2)))
