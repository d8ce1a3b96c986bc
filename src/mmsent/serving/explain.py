"""Explanations by occlusion: what happens to the predicted label's probability when one word,
or one region of the image, is taken away. Model-agnostic, needs no gradients through the
frozen encoders, and is exact about what it measures."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsent.data.images import square_crop

if TYPE_CHECKING:
    from mmsent.serving.pipeline import Pipeline
    from mmsent.serving.prepared import Prepared

GRID = 4  # image occlusion grid (GRID x GRID regions of the centre crop)


def word_attributions(pipe: "Pipeline", item: "Prepared", label_id: int) -> list[dict[str, Any]]:
    """Per word of the normalised tweet: p(label | full) − p(label | tweet without that word)."""
    from mmsent.serving.prepared import Prepared

    words = item.text.split()
    if not words:
        return []
    variants = [item] + [replace(item, text=" ".join(words[:i] + words[i + 1:]) or None) for i in range(len(words))]
    # a one-word tweet without its word may leave nothing at all to score
    variants = [v if (v.text is not None or v.image is not None) else Prepared("", None) for v in variants]
    probs = pipe.forward(variants)["probs"][:, label_id]
    return [{"token": w, "attribution": float(probs[0] - probs[i + 1])} for i, w in enumerate(words)]


def image_heatmap(pipe: "Pipeline", item: "Prepared", label_id: int, grid: int = GRID) -> list[list[float]]:
    """``grid x grid`` drop in p(label) when each region of the (centre-cropped) image is greyed out."""
    from PIL import Image

    size = pipe.image_size
    base = square_crop(item.image, size)
    cell = size // grid
    variants = [replace(item, image=base)]  # the text found inside the image is kept as read
    for r in range(grid):
        for c in range(grid):
            occluded = base.copy()
            occluded.paste(Image.new("RGB", (cell, cell), (128, 128, 128)), (c * cell, r * cell))
            variants.append(replace(item, image=occluded))
    probs = pipe.forward(variants)["probs"][:, label_id]
    return (probs[0] - probs[1:]).reshape(grid, grid).round(4).tolist()


def explain(pipe: "Pipeline", item: "Prepared", label: str) -> dict[str, Any]:
    label_id = {v: k for k, v in pipe.id2label.items()}[label]
    out: dict[str, Any] = {"method": "occlusion", "label": label}
    if item.text is not None:
        out["tokens"] = word_attributions(pipe, item, label_id)
    if item.image is not None:
        out["image_heatmap"] = image_heatmap(pipe, item, label_id)
        out["image_grid"] = GRID
    return out


def render_tokens(tokens: list[dict[str, Any]]) -> str:
    """Plain-text view for the CLI: each word with its signed attribution."""
    return " ".join(f"{t['token']}({t['attribution']:+.2f})" for t in tokens)


def overlay(image, heatmap: list[list[float]], size: int = 224):
    """The centre crop with a red (supports) / blue (opposes) overlay, for the web UI."""
    from PIL import Image

    base = np.asarray(square_crop(image, size), dtype=np.float32)
    heat = np.asarray(heatmap, dtype=np.float32)
    peak = float(np.abs(heat).max()) or 1.0
    heat = np.kron(heat / peak, np.ones((size // heat.shape[0], size // heat.shape[1])))
    heat = np.pad(heat, ((0, size - heat.shape[0]), (0, size - heat.shape[1])), mode="edge")
    colour = np.zeros_like(base)
    colour[..., 0] = np.clip(heat, 0, 1) * 255
    colour[..., 2] = np.clip(-heat, 0, 1) * 255
    alpha = 0.5 * np.abs(heat)[..., None]
    return Image.fromarray((base * (1 - alpha) + colour * alpha).astype(np.uint8))
