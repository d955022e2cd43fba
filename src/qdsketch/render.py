"""Figures: loss curves (and, later, sketch grids and GIF frames).

The only module that imports matplotlib; the core never imports it.
"""

from __future__ import annotations

from pathlib import Path

from qdsketch.files import atomic_path

PLOTS = {"total": "loss_total.png", "xy": "loss_mse.png", "pen": "loss_ce.png"}
TITLES = {"total": "Total loss", "xy": "MSE loss (dx, dy)", "pen": "Cross-entropy loss (pen state)"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: list[dict], run_dir: Path) -> list[Path]:
    """The reference's three plots: total, MSE and CE loss per epoch, train and validation."""
    plt = _pyplot()
    written = []
    epochs = [row["epoch"] for row in history]
    for key, name in PLOTS.items():
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        ax.plot(epochs, [row[f"train_{key}"] for row in history], marker="o", label="train")
        ax.plot(epochs, [row[f"val_{key}"] for row in history], marker="o", label="validation")
        best = [row["epoch"] for row in history if row["best"]]
        if best:
            ax.axvline(best[-1], color="grey", linestyle=":", label=f"best (epoch {best[-1]})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(TITLES[key])
        ax.legend()
        fig.tight_layout()
        path = Path(run_dir) / name
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        written.append(path)
    return written
