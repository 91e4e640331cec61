"""Figures of the image branch: the grid of generated images. Matplotlib only, no torch."""

from __future__ import annotations

import numpy as np

GRID_DPI = 100  # one inch per image at 100 dpi: each 8x8 digit is 100 x 100 pixels


def grid_figure(images: np.ndarray, title: str, rows: int = 8, cols: int = 8):
    """A matplotlib figure of the first rows * cols images (N, C, H, W) in [-1, 1], grey scale."""
    import matplotlib.pyplot as plt  # the stage chooses the backend (Agg) at its entry

    if len(images) < rows * cols:
        raise ValueError(f"{len(images)} images: expected at least {rows * cols} for a {rows} x {cols} grid")
    fig, axes = plt.subplots(rows, cols, figsize=(1.0 * cols, 1.0 * rows + 0.6))
    for ax, img in zip(axes.flat, images[: rows * cols]):
        pic = img[0] if img.shape[0] == 1 else np.transpose((img + 1) / 2, (1, 2, 0))
        ax.imshow(pic, cmap="gray_r" if img.shape[0] == 1 else None, vmin=-1, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig
