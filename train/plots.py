"""Plots of a run's ``metrics.jsonl``.

    python -m train.plots curves RUN_DIR [--out PATH]

``curves``: a seq2seq run's per-epoch validation (the ``phase == "eval"`` rows of ``train.supervised``), written
atomically to ``RUN_DIR/curves.png`` (or ``--out``). Left: the five route metrics (arrived, valid, path_ratio,
path_f1, efficiency; of the decoded route for a ``seq2seq.field`` run) beside token and exact accuracy. Right: the
traps of the raw mask: the shares of examples with no path and with "all path" (``mask_no_path`` / ``mask_all_path``
when the run logs them, else ``no_path`` / ``all_path``), and the mask's path_ratio against the optimal routes'
(``reference_path_ratio``). Metrics a run does not log are left out (and named in the panel's title).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402  (matplotlib's own dependency)

ROUTE_KEYS = ("arrived", "valid", "path_ratio", "path_f1", "efficiency")
SEQUENCE_KEYS = ("token", "exact")


def eval_rows(run: str | Path) -> list[dict]:
    """The ``eval`` rows of ``run/metrics.jsonl``; ``ValueError`` naming the file when it is missing or has none."""
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        raise ValueError(f"RUN_DIR must hold a metrics.jsonl (a train.supervised run folder); {path} does not exist")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number} is not JSON: {error}") from None
        if row.get("phase") == "eval":
            rows.append(row)
    if not rows:
        raise ValueError(f"{path} has no eval rows (a run evaluates at the end of each epoch)")
    return rows


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG atomically (a temporary file renamed over ``path``) and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    with Image.open(tmp) as image:  # a 64-colour palette: line plots look the same at a quarter of the bytes
        image.convert("RGB").quantize(colors=64).save(tmp, format="png", optimize=True)
    os.replace(tmp, path)
    return path


def trap_keys(row: dict) -> dict[str, str]:
    """The keys of the raw mask's trap shares and path ratio in a row: ``mask_*`` for a move-field run."""
    prefix = "mask_" if "mask_no_path" in row else ""
    return {"no path": f"{prefix}no_path", "all path": f"{prefix}all_path", "path ratio": f"{prefix}path_ratio"}


def plot_curves(run: str | Path, out: str | Path | None = None) -> Path:
    """The per-epoch curves of a seq2seq run (see the module docstring); returns the PNG's path."""
    rows = eval_rows(run)
    path = Path(out) if out is not None else Path(run) / "curves.png"
    epochs = [row["epoch"] for row in rows]

    def series(key: str) -> list[float] | None:
        values = [row.get(key) for row in rows]
        return None if all(v is None for v in values) else [float("nan") if v is None else v for v in values]

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    missing = []
    for key in (*ROUTE_KEYS, *SEQUENCE_KEYS):
        values = series(key)
        if values is None:
            missing.append(key)
            continue
        style = "--" if key in SEQUENCE_KEYS else "-"
        left.plot(epochs, values, style, marker="o", markersize=3, label=key)
    left.set(xlabel="epoch", ylabel="validation share / mean", ylim=(-0.02, 1.02),
             title="route metrics" + (" (decoded route)" if "mask_no_path" in rows[-1] else "")
             + (f"; not logged: {', '.join(missing)}" if missing else ""))
    traps = trap_keys(rows[-1])
    ratio = right.twinx()  # path ratios are a few percent of the city: their own scale
    absent = []
    for (label, key), ax, color in zip(traps.items(), (right, right, ratio), ("tab:red", "tab:orange", "tab:blue")):
        values = series(key)
        if values is None:
            absent.append(key)
            continue
        side = " right axis" if ax is ratio else ""
        ax.plot(epochs, values, marker="o", markersize=3, color=color, label=f"{label} ({key}{side})")
    reference = series("reference_path_ratio")
    if reference is None:
        absent.append("reference_path_ratio")
    else:
        ratio.plot(epochs, reference, ":", color="black", label="optimal path ratio (right axis)")
    right.set(xlabel="epoch", ylabel="share of examples with the trap", ylim=(-0.02, 1.02),
              title="traps of the raw mask" + (f"; not logged: {', '.join(absent)}" if absent else ""))
    ratio.set_ylabel("path ratio (share of the city marked)")
    ratio.set_ylim(bottom=0)
    for ax in (left, right):
        ax.xaxis.get_major_locator().set_params(integer=True)
    left.legend(loc="best", fontsize="small")
    handles = [h for ax in (right, ratio) for h in ax.get_legend_handles_labels()[0]]
    if handles:
        right.legend(handles=handles, loc="best", fontsize="small")
    fig.suptitle(str(Path(run)), fontsize="small")
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> None:
    """``python -m train.plots curves RUN_DIR [--out PATH]``; errors exit 2 with a message, no traceback."""
    parser = argparse.ArgumentParser(prog="python -m train.plots", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    curves = commands.add_parser("curves", help="per-epoch validation curves of a seq2seq run")
    curves.add_argument("run", metavar="RUN_DIR", help="a train.supervised run folder (with metrics.jsonl)")
    curves.add_argument("--out", default=None, help="the PNG to write (default: RUN_DIR/curves.png)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        print(f"wrote {plot_curves(args.run, args.out)}")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
