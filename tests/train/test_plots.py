"""train.plots: the per-epoch curves of a seq2seq run from a synthetic metrics.jsonl, written atomically."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from train import plots

ROOT = Path(__file__).resolve().parents[2]


def write_run(folder: Path, epochs: int = 4, field: bool = True) -> Path:
    """A run folder whose metrics.jsonl has train rows and one eval row per epoch (mask_* keys with ``field``)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for epoch in range(1, epochs + 1):
        lines.append({"step": epoch * 10 - 5, "epoch": epoch - 1, "phase": "train", "loss": 1.0 / epoch})
        row = {"step": epoch * 10, "epoch": epoch, "phase": "eval", "exact": 0.1 * epoch, "token": 0.9,
               "arrived": 0.2 * epoch, "valid": 1.0, "path_ratio": 0.02, "path_f1": 0.1 * epoch, "efficiency": 0.15 * epoch,
               "no_path": 0.0, "all_path": 0.0, "reference_path_ratio": 0.025}
        if field:
            row.update(mask_no_path=1.0 / epoch, mask_all_path=0.05 * epoch, mask_path_ratio=0.01 * epoch)
        lines.append(row)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


def test_curves_of_a_field_run_plot_every_metric_and_the_mask_traps(tmp_path, monkeypatch):
    drawn = {}
    original = plots.save_figure

    def keep(fig, path):  # the lines of both panels, before the figure is closed
        drawn.update({ax.get_title(): {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
                      for ax in fig.axes})
        return original(fig, path)

    monkeypatch.setattr(plots, "save_figure", keep)
    run = write_run(tmp_path / "run")
    path = plots.plot_curves(run)
    assert path == run / "curves.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in run.iterdir()) == ["curves.png", "metrics.jsonl"]  # no temporary file left
    left, right = drawn["route metrics (decoded route)"], {**drawn["traps of the raw mask"], **drawn[""]}  # + twin axis
    assert set(left) == {"arrived", "valid", "path_ratio", "path_f1", "efficiency", "token", "exact"}
    assert left["arrived"] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert right["no path (mask_no_path)"] == pytest.approx([1.0, 0.5, 1 / 3, 0.25])
    assert right["all path (mask_all_path)"] == pytest.approx([0.05, 0.1, 0.15, 0.2])
    assert right["path ratio (mask_path_ratio right axis)"] == pytest.approx([0.01, 0.02, 0.03, 0.04])
    assert right["optimal path ratio (right axis)"] == pytest.approx([0.025] * 4)


def test_a_run_without_a_field_plots_the_plain_traps_and_names_what_it_lacks(tmp_path, monkeypatch):
    titles = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: (titles.extend(ax.get_title() for ax in fig.axes),
                                                                  plt.close(fig), path)[-1])
    run = write_run(tmp_path / "run", field=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("reference_path_ratio", None)
        row.pop("efficiency", None)
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    plots.plot_curves(run, tmp_path / "elsewhere" / "c.png")
    assert titles[:2] == ["route metrics; not logged: efficiency", "traps of the raw mask; not logged: reference_path_ratio"]
    assert plots.trap_keys(rows[-1]) == {"no path": "no_path", "all path": "all_path", "path ratio": "path_ratio"}


def test_cli_writes_the_png_and_names_a_folder_without_metrics(tmp_path):
    run = write_run(tmp_path / "run", epochs=2)
    done = subprocess.run([sys.executable, "-m", "train.plots", "curves", str(run), "--out", str(tmp_path / "c.png")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and (tmp_path / "c.png").is_file(), done.stderr
    bad = subprocess.run([sys.executable, "-m", "train.plots", "curves", str(tmp_path / "none")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "RUN_DIR must hold a metrics.jsonl" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "metrics.jsonl").write_text(json.dumps({"step": 1, "epoch": 0, "phase": "train"}) + "\n")
    with pytest.raises(ValueError, match="has no eval rows"):
        plots.plot_curves(tmp_path / "empty")
