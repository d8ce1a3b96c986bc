"""The web UI in a real headless browser (Debian's chromium driven by Playwright)."""

import shutil
import socket
import time

import numpy as np
import pytest
from PIL import Image

from mmsent.serving.pipeline import Pipeline, default_model_path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(not default_model_path().is_file(), reason="no shipped model"),
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/run installs Debian's package)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ui_url():
    from mmsent.serving.ui import build_ui

    demo = build_ui(Pipeline.load(device="cpu"), examples=[])
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}"
    demo.close()


def test_analyse_function_handles_bad_input_without_raising():
    from mmsent.serving.ui import analyse

    pipe = Pipeline.load(device="cpu")
    *_, message = analyse(pipe, "", None, False)
    assert "nothing to score" in message
    probs, weights, tokens, heat, message = analyse(pipe, "so happy", None, True)
    assert set(probs) == {"positive", "neutral", "negative"} and tokens and heat is None


def test_upload_an_image_and_read_the_label(ui_url, tmp_path):
    from playwright.sync_api import sync_playwright

    image = tmp_path / "tweet.jpg"
    Image.fromarray(np.full((80, 120, 3), (250, 200, 60), np.uint8)).save(image)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page()
        page.goto(ui_url, wait_until="networkidle")
        page.locator("#tweet-text textarea").fill("Best day ever, I love it!")
        page.locator("#tweet-image input[type=file]").set_input_files(str(image))
        page.wait_for_timeout(500)
        page.locator("#analyse").click()
        message = page.locator("#result-message")
        deadline = time.time() + 60
        while time.time() < deadline and "from" not in message.inner_text():
            page.wait_for_timeout(250)
        text = message.inner_text()
        page.screenshot(path=str(tmp_path / "ui.png"), full_page=True)
        browser.close()
    assert text.split()[0] in ("positive", "neutral", "negative"), text
    assert "text + image" in text
