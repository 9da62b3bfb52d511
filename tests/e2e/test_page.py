"""The web page in headless Chromium (Debian's, driven by Playwright), against a live server
with the fake models: ask and see cited sources, upload and ask, hostile text stays text."""

import shutil

import pytest

from ragtune.serve import ServeSettings, create_app
from tests.serve.conftest import LiveServer

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium not found; install Debian's chromium package "
    "(`make test` does: apt-get install chromium)")


@pytest.fixture
def page(kb):
    app = create_app(ServeSettings(kb=kb.path), kb=kb)
    with LiveServer(app) as server, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox"])
        tab = browser.new_page()
        errors = []
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.goto(server.url + "/")
        tab.set_default_timeout(15_000)
        tab.wait_for_selector("#doc-list li")  # models and documents have loaded
        yield tab
        browser.close()
        assert errors == []


def ask(page, question):
    turns = page.locator(".turn").count()
    page.fill("#question", question)
    page.click("#send")
    turn = page.locator(".turn").nth(turns)
    turn.locator(".cite").first.wait_for()  # citations arrive with the last chunk
    return turn


def test_ask_and_see_the_cited_source(page):
    turn = ask(page, "How many days of paid vacation?")
    assert "25 days" in turn.locator(".answer").inner_text()
    cite = turn.locator(".cite").first
    assert "vacation.txt" in cite.inner_text()
    cite.click()
    assert page.locator("#source-name").inner_text() == "docs/vacation.txt"
    assert "25 days of paid vacation" in page.locator("#source-text").inner_text()


def test_upload_a_document_and_get_an_answer_from_it(page):
    page.set_input_files("#files", files=[{
        "name": "parking.txt", "mimeType": "text/plain",
        "buffer": b"Visitors park in the north garage on level two."}])
    page.click("#upload button")
    page.locator("#doc-list li", has_text="parking.txt").wait_for()
    turn = ask(page, "Where do visitors park?")
    assert "north garage" in turn.locator(".answer").inner_text()
    assert "uploads/parking.txt" in turn.locator(".cite").first.inner_text()  # an upload
    page.locator("#doc-list li", has_text="parking.txt").locator("button").click()
    page.locator("#doc-list li", has_text="parking.txt").wait_for(state="detached")


def test_a_hostile_document_does_not_run_script(page):
    hostile = (b"Hostile <script>window.__pwned = 1</script> text "
               b"<img src=x onerror=\"window.__pwned = 2\"> about zebras.")
    page.set_input_files("#files", files=[{"name": "zebra.txt", "mimeType": "text/plain",
                                           "buffer": hostile}])
    page.click("#upload button")
    page.locator("#doc-list li", has_text="zebra.txt").wait_for()
    turn = ask(page, "What is the hostile text about zebras?")
    turn.locator(".cite", has_text="zebra.txt").first.click()
    shown = page.locator("#source-text").inner_text()
    assert "<script>window.__pwned = 1</script>" in shown  # the characters, as text
    assert "<script>" in turn.locator(".answer").inner_text()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#source-text script, #source-text img, .answer img").count() == 0


def test_a_follow_up_is_read_in_the_conversation(page):
    ask(page, "When was the Eiffel Tower completed?")
    turn = ask(page, "How tall is it?")
    assert turn.locator(".rewrite").inner_text() == "searched for: How tall is Eiffel Tower?"
    page.click("#new-chat")
    assert page.locator(".turn").count() == 0
    turn = ask(page, "How tall is it?")  # a new conversation: nothing to read it with
    assert turn.locator(".rewrite").count() == 0


@pytest.fixture
def pdf_page(tmp_path):
    from tests.unit.documents.test_tables import statement_kb

    base, _ = statement_kb(tmp_path)
    app = create_app(ServeSettings(kb=base.path), kb=base)
    with LiveServer(app) as server, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        tab.goto(server.url + "/")
        tab.set_default_timeout(15_000)
        tab.wait_for_selector("#doc-list li")
        yield tab
        browser.close()


def test_a_citation_opens_its_pdf_page_with_the_passage_highlighted(pdf_page, tmp_path):
    turn = ask(pdf_page, "What were total net sales?")
    turn.locator(".cite").first.click()
    # the cited rows of the statement, under their header row
    assert "| Three Months Ended June 25, 2022 |" in pdf_page.locator("#source-text").inner_text()
    pdf_page.locator("#source-view img").wait_for()
    pdf_page.wait_for_function(
        "document.querySelector('#source-view img').naturalWidth > 0")
    marks = pdf_page.locator("#source-view .highlight")
    assert marks.count() >= 1
    image = pdf_page.locator("#source-view img").bounding_box()
    mark = marks.first.bounding_box()
    assert mark["width"] > 20 and mark["height"] > 3  # drawn, not collapsed
    assert image["x"] <= mark["x"] and mark["x"] + mark["width"] <= image["x"] + image["width"] + 1
    pdf_page.screenshot(path=str(tmp_path / "highlight.png"))


@pytest.fixture
def keyed_page(tmp_path):
    """The page of a server with keys over the statement PDF and a text file."""
    from tests.serve.conftest import KEY
    from tests.unit.documents.test_tables import statement_kb

    base, _ = statement_kb(tmp_path, notes=True)
    app = create_app(ServeSettings(kb=base.path, api_keys=(KEY,)), kb=base)
    with LiveServer(app) as server, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 860})
        errors = []
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.set_default_timeout(15_000)
        tab.goto(server.url + "/")
        yield tab, KEY
        browser.close()
        assert errors == []


def use_key(page, key):
    page.fill("#key", key)
    page.click("#key-go")


def test_the_page_asks_for_a_key_then_shows_the_kb_and_answers_with_chips(keyed_page,
                                                                          tmp_path):
    page, key = keyed_page
    page.locator("#gate").wait_for()
    assert "Type your API key" in page.locator("#gate h2").inner_text()
    assert not page.locator("#app").is_visible()  # no empty controls before the key
    page.screenshot(path=tmp_path / "page-1-key.png")

    use_key(page, "not-the-key")
    page.locator("#gate-error", has_text="wrong API key").wait_for()  # the server's message
    assert not page.locator("#app").is_visible()
    page.screenshot(path=tmp_path / "page-2-wrong-key.png")

    use_key(page, key)
    page.locator("#app").wait_for()
    assert page.locator("#kb-name").inner_text() == "· kb"
    assert page.locator("#kb-summary").inner_text() == "2 documents · 1 page · 5 chunks"
    pdf = page.locator("#doc-list li", has_text="filings/q3.pdf")
    assert "indexed" in pdf.inner_text() and "1 page" in pdf.inner_text()
    assert "4 chunks" in pdf.inner_text()
    example = page.locator(".example", has_text="What were total net sales in the three "
                           "months ended June 25, 2022?")
    example.wait_for()
    page.screenshot(path=tmp_path / "page-3-kb.png")

    example.click()
    turn = page.locator(".turn").first
    chip = turn.locator(".answer .chip").first
    chip.wait_for()
    assert chip.inner_text() == "1" and "q3.pdf" in chip.get_attribute("title")
    assert not page.locator("#welcome").is_visible()
    chip.click()
    assert page.locator("#source-name").inner_text() == "filings/q3.pdf"
    assert "chip active" in chip.get_attribute("class")
    page.locator("#source-view img").wait_for()
    page.wait_for_function("document.querySelector('#source-view img').naturalWidth > 0")
    assert page.locator("#source-view .highlight").count() >= 1
    page.screenshot(path=tmp_path / "page-4-source.png")

    follow = page.locator(".turn").count()
    page.fill("#question", "And net income?")
    page.click("#send")
    page.locator(".turn").nth(follow).locator(".cite").first.wait_for()
    assert page.locator(".turn").count() == 2  # the conversation stays on the page
    page.screenshot(path=tmp_path / "page-5-follow-up.png")

    page.reload()  # the key is kept for this tab
    page.locator("#app").wait_for()
    assert not page.locator("#gate").is_visible()


def test_a_read_key_sees_the_documents_without_upload_or_delete(kb):
    app = create_app(ServeSettings(kb=kb.path, api_keys=("reader-key-4:read",)), kb=kb)
    with LiveServer(app) as server, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.goto(server.url + "/")
        use_key(page, "reader-key-4")
        page.locator("#doc-list li", has_text="docs/tower.md").wait_for()
        assert page.locator("#doc-list li").count() == 2
        assert page.locator("#doc-list button").count() == 0
        assert not page.locator("#upload").is_visible()
        assert page.locator(".example").count() == 2
        browser.close()
