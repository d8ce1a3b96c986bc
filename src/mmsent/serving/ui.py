"""Web UI (Gradio): tweet text + image → label, confidences, modality weights, explanations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmsent.serving.pipeline import Pipeline


def example_pairs(params_path: str | Path | None = None, n: int = 4) -> list[list[Any]]:
    """A few MVSA-Single test pairs when the prepared data is present, else none."""
    try:
        from mmsent.config import load_params
        from mmsent.data.mvsa import load_prepared
        from mmsent.paths import PREPARED_DIR

        params = load_params(params_path)
        test = load_prepared(params.path(PREPARED_DIR) / "single.parquet", "test")
    except (FileNotFoundError, OSError, ValueError):
        return []
    rows = test.groupby("label").head(2).head(n)
    return [[r.text_raw, str(params.data.root / r.image), True] for r in rows.itertuples()]


def analyse(pipe: Pipeline, text: str | None, image, explain: bool):
    """One UI request → (label confidences, modality weights, highlighted words, heat-map overlay, message)."""
    from mmsent.serving.explain import overlay
    from mmsent.data.images import ImageLoadError
    from mmsent.serving.prepared import InputError

    try:
        res = pipe.predict(text=text or None, image=image, explain=explain)
    except (InputError, ImageLoadError) as exc:
        return None, None, None, None, f"⚠️ {exc}"
    weights = res.get("modality_weights")
    tokens = heat = None
    if explain:
        exp = res["explanation"]
        if "tokens" in exp:
            tokens = [(t["token"], round(t["attribution"], 3)) for t in exp["tokens"]]
        if "image_heatmap" in exp:
            from mmsent.data.images import open_image

            heat = overlay(open_image(image), exp["image_heatmap"], pipe.image_size)
    message = f"**{res['label']}** from {' + '.join(res['modalities'])}"
    return res["probabilities"], weights, tokens, heat, message


def build_ui(pipe: Pipeline, examples: list[list[Any]] | None = None):
    import gradio as gr

    examples = example_pairs() if examples is None else examples
    with gr.Blocks(title="mmsent") as demo:
        gr.Markdown("# mmsent — tweet sentiment from text and image\nType a tweet, add its image (either may be left "
                    "out), and get positive / neutral / negative with the evidence.")
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="Tweet text", lines=3, elem_id="tweet-text")
                image = gr.Image(label="Image", type="pil", elem_id="tweet-image")
                explain = gr.Checkbox(label="Explain (word and region occlusion)", value=True)
                button = gr.Button("Analyse", variant="primary", elem_id="analyse")
            with gr.Column():
                message = gr.Markdown(elem_id="result-message")
                label = gr.Label(label="Sentiment", num_top_classes=3, elem_id="result-label")
                weights = gr.Label(label="Modality weights (attention)", elem_id="result-weights")
                tokens = gr.HighlightedText(label="Words (red: supports the label)", elem_id="result-tokens")
                heat = gr.Image(label="Image regions (red: supports the label)", elem_id="result-heat")
        button.click(lambda t, i, e: analyse(pipe, t, i, e), [text, image, explain],
                     [label, weights, tokens, heat, message])
        if examples:
            gr.Examples(examples, [text, image, explain], label="MVSA-Single test pairs")
    return demo
