"""Fast checks of benchmarks.grid_attention: a tiny run's JSON keys and figures, argument validation."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks.grid_attention import FORMULATIONS, main

MODES = ("forward", "forward_backward")


def test_tiny_run_prints_every_formulation_s_figures(capsys: pytest.CaptureFixture[str]) -> None:
    threads = torch.get_num_threads()
    try:
        out = main(["--sides", "4", "3", "--window", "2", "--batch", "1", "--heads", "2", "--head-dim", "4",
                    "--block-side", "3", "--seconds", "0.001", "--rounds", "1"])
    finally:
        torch.set_num_threads(threads)  # main sets one thread for the whole process
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(out))  # one JSON object on stdout
    assert out["benchmark"] == "grid_attention"
    figures = out["figures"]
    assert figures["setup"]["torch_threads"] == 1 and figures["setup"]["window"] == 2
    assert set(figures["attention"]) == {"side4", "side3"}
    for rows in figures["attention"].values():
        assert set(rows) == set(FORMULATIONS)
        for name, row in rows.items():
            assert set(row) == {"max_abs_diff"} | {f"{m}_{key}" for m in MODES
                                                   for key in ("s", "speedup", "cells_per_s")}
            assert row["max_abs_diff"] < 1e-5 and all(row[f"{m}_s"] > 0 and row[f"{m}_cells_per_s"] > 0
                                                      for m in MODES)
        assert all(rows["gathered"][f"{m}_speedup"] == 1.0 for m in MODES)  # the reference
    block = figures["block"]["side3"]
    assert set(block) == {"fused", "gathered", "conv8", "conv32"}  # the conv block at the block width and at --conv-hidden
    assert all(set(row) == {"forward_cells_per_s", "forward_backward_cells_per_s", "forward_backward_speedup"}
               for row in block.values())
    assert out["targets_met"]["all_formulations_match_the_reference"] is True
    assert set(out["targets_met"]) == {"fused_faster_than_gathered_forward_backward",
                                       "all_formulations_match_the_reference"}


@pytest.mark.parametrize("flag, value", [("--window", "0"), ("--batch", "0"), ("--sides", "0"),
                                         ("--head-dim", "6"), ("--prefix", "-1"), ("--seconds", "0"),
                                         ("--rounds", "0"), ("--threads", "0"), ("--block-side", "0")])
def test_bad_arguments_are_named(flag: str, value: str) -> None:
    with pytest.raises(ValueError, match=flag):
        main([flag, value])
