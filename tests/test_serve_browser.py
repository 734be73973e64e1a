"""A real browser on melp serve: Chromium (the system's, driven by Playwright) loads the page from a server on a free
loopback port, uploads an ECG, waits for the findings and the 12-lead tracing (the page's first request), then the
report (its second), clicks a report sentence and checks
that the tracing highlights the beats that sentence attends to; a bad file shows the reader's message.

Screenshots are kept in ``$MELP_TEST_ARTEFACTS`` (default ``<tmp>/melp-test-artefacts``). Skips where Chromium
(``/usr/bin/chromium``, or ``$MELP_CHROMIUM``) or the ``playwright`` package is missing.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_serve_api import FORMAT_SAMPLES, make_client, make_micro_model

CHROMIUM = Path(os.environ.get("MELP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTEFACTS = Path(os.environ.get("MELP_TEST_ARTEFACTS", Path(tempfile.gettempdir()) / "melp-test-artefacts"))
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """melp serve's app under uvicorn in a thread, on a free loopback port bound before the server starts."""
    import uvicorn

    app = make_client(make_micro_model(tmp_path_factory.mktemp("browser"))).app
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the server did not start within 30 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set MELP_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def test_upload_shows_findings_tracing_and_sentence_beats(server: str, browser: object, shared_data: Path) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1440, "height": 1000})  # type: ignore[attr-defined]
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    page.goto(server, timeout=TIMEOUT_MS)
    page.wait_for_selector("#model-info:has-text('ECG tower on')", timeout=TIMEOUT_MS)

    path = shared_data / "ecg-formats" / FORMAT_SAMPLES["aecg"]
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#findings li", timeout=TIMEOUT_MS)  # first answer: reading, tracing, findings
    assert page.locator("#findings li").count() == 9
    assert page.locator("#tracing polyline.trace").count() == 12  # every lead of the aECG drawn
    assert page.locator("#tracing pattern").count() == 2  # the 1 mm and 5 mm grid
    assert "CVRG_hl7aecg-Example2.xml" in page.locator("#reading").inner_text()
    page.wait_for_selector(".sentence", timeout=TIMEOUT_MS)  # second answer: the report and its attention
    assert page.locator("#beats .beat-tick").count() > 0

    sentences = page.locator(".sentence")
    links = [len((sentences.nth(i).get_attribute("data-beats") or "").split()) for i in range(sentences.count())]
    assert links and max(links) > 0, "the micro model's report links no beat; the test needs one that does"
    best = links.index(max(links))
    assert page.locator("#highlights .beat-highlight").count() == 0
    sentences.nth(best).click()
    assert page.locator(f".sentence[data-index='{best}'].active").count() == 1
    assert page.locator("#highlights .beat-highlight").count() == links[best]
    assert page.locator("#attention .attn-band").count() > 0
    assert "attends most to the beat" in page.locator("#sentence-info").inner_text()
    page.screenshot(path=str(ARTEFACTS / "serve-page.png"), full_page=True)

    page.fill("#labels", "atrial fibrillation, sinus rhythm")
    page.click("#rescore")
    page.wait_for_selector("#findings li.custom", timeout=TIMEOUT_MS)
    assert page.locator("#findings li.custom").count() == 2
    assert page.locator("#highlights .beat-highlight").count() == links[best]  # the tracing and report stay

    assert not console_errors, console_errors
    assert all(url.startswith(server) for url in requests), [u for u in requests if not u.startswith(server)]
    page.close()


def test_bad_file_shows_the_readers_message(server: str, browser: object, tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("this is not an ECG\n")
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(server, timeout=TIMEOUT_MS)
    page.set_input_files("#file", str(junk))
    page.wait_for_selector("#error:not([hidden])", timeout=TIMEOUT_MS)
    message = page.locator("#error").inner_text()
    assert message.startswith("notes.txt: csv:"), message
    assert page.locator("#result").is_hidden()
    page.screenshot(path=str(ARTEFACTS / "serve-error.png"))
    page.close()
