"""scripts/check_pages.py: links, anchors and Colab links read from the built files, and one run
of the real browser on a tiny site with a missing image and a JavaScript error."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_pages.py"
SPEC = importlib.util.spec_from_file_location("check_pages", SCRIPT)
check_pages = importlib.util.module_from_spec(SPEC)
sys.modules["check_pages"] = check_pages  # dataclasses look their module up while it loads
SPEC.loader.exec_module(check_pages)

CONFIG = {"repository": {"url": "https://github.com/owner/repo", "branch": "dev"},
          "launch_buttons": {"colab_url": "https://colab.research.google.com"}}
GOOD_COLAB = "https://colab.research.google.com/github/owner/repo/blob/dev/book/a.ipynb"


def page(body: str, head: str = "") -> str:
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>"


def make_site(root: Path, files: dict[str, str]) -> Path:
    """A build folder ``root/_build/html`` holding ``files`` (path: text)."""
    html_dir = root / "_build" / "html"
    for name, text in files.items():
        (html_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (html_dir / name).write_text(text)
    return html_dir


@pytest.fixture
def site(tmp_path) -> Path:
    return make_site(tmp_path, {
        "book/a.html": page(
            '<h1 id="top">A</h1>'
            '<a href="b.html">good</a> <a href="b.html#there">good anchor</a>'
            '<a href="#top">same page</a> <a href="#">nothing</a>'
            '<a href="https://example.org/x.html">external</a>'
            '<a href="missing.html">broken</a> <a href="b.html#nowhere">missing anchor</a>'
            f'<a href="{GOOD_COLAB}">Colab</a>',
            head='<link rel="stylesheet" href="../_static/gone.css?v=1">'),
        "book/b.html": page('<section id="there"><a href="a.html#top">back</a></section>'),
        "index.html": '<meta http-equiv="Refresh" content="0; url=book/a.html" />',
        "_static/template.html": page('<a href="nowhere.html">not a page</a>'),
        "_sources/book/a.ipynb": "{}",
        "_sources/book/b.md": "# B",
    })


def problems_of(html_dir: Path) -> list[str]:
    pages = check_pages.find_pages(html_dir)
    return [str(p) for p in check_pages.check_references(html_dir, pages, {})]


def test_pages_are_found_without_the_asset_folders(site):
    names = [check_pages.page_name(site, p) for p in check_pages.find_pages(site)]
    assert names == ["book/a.html", "book/b.html", "index.html"]


def test_broken_links_missing_anchors_and_files_are_reported(site):
    assert sorted(problems_of(site)) == [
        "book/a.html: broken link: missing.html (no such file in the build)",
        "book/a.html: missing anchor: b.html#nowhere (no id 'nowhere' on that page)",
        "book/a.html: missing file: ../_static/gone.css?v=1 (no such file in the build)",
    ]


def test_good_links_and_anchors_are_not_reported(tmp_path):
    html_dir = make_site(tmp_path, {
        "book/a.html": page('<a name="old"></a><a href="b.html#there">x</a><a href="#old">y</a>'
                            '<a href="../index.html">z</a><a href="sub/">folder</a>'
                            '<a href="b.html#with%20space">quoted</a>'),
        "book/b.html": page('<p id="there"></p><p id="with space"></p>'),
        "book/sub/index.html": page(""),
        "index.html": '<meta http-equiv="Refresh" content="0; url=book/a.html" />',
    })
    assert problems_of(html_dir) == []


def test_a_link_out_of_the_build_folder_is_broken(tmp_path):
    html_dir = make_site(tmp_path, {"a.html": page('<a href="../../outside.html">x</a>')})
    (tmp_path / "outside.html").write_text("exists, but is not part of the build")
    assert problems_of(html_dir) == ["a.html: broken link: ../../outside.html (outside the build)"]


def test_the_expected_colab_url_follows_the_config():
    assert check_pages.expected_colab_url(CONFIG, "book/a.ipynb") == GOOD_COLAB
    other = {"repository": {"url": "https://github.com/owner/repo.git/", "path_to_book": "docs/"},
             "launch_buttons": {"colab_url": "https://colab.research.google.com/"}}
    # no branch: Jupyter Book's default, master
    assert check_pages.expected_colab_url(other, "x.ipynb") == (
        "https://colab.research.google.com/github/owner/repo/blob/master/docs/x.ipynb")
    assert check_pages.expected_colab_url({"repository": CONFIG["repository"]}, "x.ipynb") is None
    on_gitlab = {**CONFIG, "repository": {"url": "https://gitlab.com/owner/repo"}}
    assert check_pages.expected_colab_url(on_gitlab, "x.ipynb") is None


def test_the_expected_colab_url_of_this_book_matches_its_config():
    root = SCRIPT.parent.parent
    config = check_pages.load_book_config(root / "_config.yml")
    url = check_pages.expected_colab_url(config, "book/01_data.ipynb")
    assert url.endswith(f"/blob/{config['repository']['branch']}/book/01_data.ipynb")
    assert config["repository"]["url"].removeprefix("https://github.com/") in url


def colab_problems(html_dir: Path, config: dict) -> list[str]:
    pages = check_pages.find_pages(html_dir)
    return [str(p) for p in check_pages.check_colab_links(html_dir, pages, {}, config)]


def test_a_right_colab_link_is_not_reported(site):
    assert colab_problems(site, CONFIG) == []


def test_a_wrong_or_missing_colab_link_is_reported(site):
    forked = {**CONFIG, "repository": {"url": "https://github.com/someone/fork", "branch": "dev"}}
    assert colab_problems(site, forked) == [
        f"book/a.html: Colab link: {GOOD_COLAB}; expected "
        "https://colab.research.google.com/github/someone/fork/blob/dev/book/a.ipynb"]
    (site / "book/a.html").write_text(page("no launch button"))
    assert colab_problems(site, CONFIG) == [f"book/a.html: Colab link: none; expected {GOOD_COLAB}"]


def test_the_source_of_a_page_comes_from_sources(site):
    assert check_pages.source_of(site, site / "book/a.html") == "book/a.ipynb"
    assert check_pages.source_of(site, site / "book/b.html") == "book/b.md"
    assert check_pages.source_of(site, site / "index.html") is None


def test_the_browser_log_is_sorted_by_meaning():
    base = "http://127.0.0.1:8000/"
    twice = 'const THEBE_JS_URL = "x"; const other = 1'
    facts = check_pages.PageFacts(inline_scripts=[twice, "var y = 2", twice])
    entries = [
        {"level": "SEVERE", "source": "network",
         "message": "https://cdn.example.org/m.js - Failed to load resource: net::ERR_FAILED"},
        {"level": "SEVERE", "source": "network",
         "message": f"{base}_static/gone.js - Failed to load resource: 404 (File not found)"},
        {"level": "SEVERE", "source": "network",
         "message": f"{base}favicon.ico - Failed to load resource: 404 (File not found)"},
        {"level": "SEVERE", "source": "javascript",
         "message": f"{base}a.html 61:12 Uncaught SyntaxError: Identifier 'THEBE_JS_URL' has "
                    "already been declared"},
        {"level": "SEVERE", "source": "javascript",
         "message": f"{base}a.html 70:5 Uncaught SyntaxError: Identifier 'y' has already been "
                    "declared"},
        {"level": "SEVERE", "source": "javascript",
         "message": f"{base}a.html 9:1 Uncaught Error: boom"},
        {"level": "SEVERE", "source": "console-api", "message": f'{base}t.js 0:1 "invalid mode"'},
        {"level": "INFO", "source": "console-api", "message": "hello"},
    ]
    findings = check_pages.classify_log(entries, base, facts)
    assert findings.offline == ["https://cdn.example.org/m.js"]
    assert [m.split(" ")[0] for m in findings.missing_local] == [f"{base}_static/gone.js"]
    assert len(findings.known) == 1 and "THEBE_JS_URL" in findings.known[0]
    # 'y' is declared in a script written once: a real error of the page
    assert [check_pages.without_location(m) for m in findings.errors] == [
        "Uncaught SyntaxError: Identifier 'y' has already been declared", "Uncaught Error: boom"]
    assert findings.warnings == [f'{base}t.js 0:1 "invalid mode"']


def test_a_missing_file_is_reported_once_per_page():
    problem = check_pages.Problem
    found = [problem("a.html", "missing file", "x.png (no such file)", "x.png"),
             problem("a.html", "image not loaded", "x.png", "x.png"),
             problem("b.html", "image not loaded", "x.png", "x.png"),
             problem("b.html", "JavaScript error", "boom"),
             problem("b.html", "JavaScript error", "boom again")]
    assert check_pages.without_repeats(found) == [found[0], *found[2:]]


def test_screenshot_names_are_the_page_names_unless_they_clash(tmp_path):
    pages = [tmp_path / "book/a.html", tmp_path / "book/b.html", tmp_path / "extra/b.html"]
    assert list(check_pages.screenshot_names(tmp_path, pages).values()) == [
        "a.png", "book__b.png", "extra__b.png"]


BROWSER_MISSING = not (Path(check_pages.CHROMIUM).is_file()
                       and Path(check_pages.chromedriver_path()).is_file())


@pytest.mark.slow
@pytest.mark.skipif(BROWSER_MISSING, reason="needs chromium and chromedriver "
                    "(scripts/install_browser.sh)")
def test_the_browser_finds_a_missing_image_and_a_javascript_error(tmp_path, capsys):
    pytest.importorskip("selenium")
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(CONFIG))
    wide = "x" * 400
    html_dir = make_site(tmp_path, {
        "book/a.html": page(f'<img src="corrupt.png" alt="x"><a href="{GOOD_COLAB}">Colab</a>'
                            f'<article class="bd-article" style="width:300px"><pre '
                            f'style="overflow:auto">{wide}</pre></article>'),
        "book/b.html": page('<p>fine so far</p><script>throw new Error("boom")</script>'),
        "_sources/book/a.ipynb": "{}",
        "_sources/book/b.md": "# B",
        "book/corrupt.png": "the file is there, but it is no image",
    })
    shots = tmp_path / "shots"
    assert check_pages.main([str(html_dir), "--screenshots", str(shots)]) == 1
    out = capsys.readouterr().out
    assert "book/a.html: image not loaded: corrupt.png" in out
    assert "book/b.html: JavaScript error:" in out and "boom" in out
    assert "book/a.html: <pre>" in out and "(scrolls sideways)" in out  # reported, not failing
    assert sorted(p.name for p in shots.iterdir()) == ["a.png", "b.png"]
    assert (shots / "a.png").read_bytes().startswith(b"\x89PNG")
    # overflow fails only when asked to
    html_dir.joinpath("book/b.html").write_text(page("<p>fixed</p>"))
    one_pixel = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
    html_dir.joinpath("book/a.html").write_text(page(
        f'<img src="{one_pixel}" alt=""><a href="{GOOD_COLAB}">C</a>'
        f'<article class="bd-article" style="width:300px"><pre style="overflow:auto">{wide}</pre>'
        "</article>"))
    assert check_pages.main([str(html_dir), "--screenshots", str(shots)]) == 0
    assert check_pages.main([str(html_dir), "--screenshots", str(shots),
                             "--fail-on-overflow"]) == 1
