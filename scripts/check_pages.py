"""Open every page of the built book in headless Chromium and check what a reader would see.

Usage::

    python scripts/check_pages.py _build/html                      # screenshots: _build/screenshots
    python scripts/check_pages.py _build/html --screenshots DIR --fail-on-overflow

Failures (exit status 1):

- an internal link points at a file the build does not contain, or at a ``#fragment`` that no
  element of the target page carries (read from the HTML files, no browser needed);
- a page refers to a local image, script or stylesheet that is not in the build;
- an ``<img>`` did not load in the browser;
- a page raised a JavaScript error of its own (an uncaught exception);
- a chapter built from a notebook has no Colab launch link, or one that does not open this
  repository's notebook (``repository.url``, ``repository.branch`` and
  ``launch_buttons.colab_url`` in ``_config.yml``).

Horizontal overflow (tables, code blocks and outputs wider than the content column, which
readers have to scroll sideways, or which run past the column) is measured at a 1280 px wide
window and reported; it fails the check only with ``--fail-on-overflow``.

What is *not* a failure, and why:

- External URLs. The pages load MathJax and thebe from CDNs; CI has no internet, so the browser
  resolves every host except the local server to "not found" (deterministic, and no page waits
  for a network timeout). These failed loads are listed as information: they are not the book's
  fault, and the book's own content must work without them.
- ``console.error`` messages. Library code logs diagnostics this way (pydata-sphinx-theme logs
  "Got invalid theme mode" on a first visit); they are listed as warnings. Only uncaught
  exceptions count as JavaScript errors.
- One known toolchain bug: Sphinx 7 writes inline ``<script>`` blocks that extensions add late
  (sphinx-thebe's ``const THEBE_JS_URL ...``, sphinx-togglebutton's selector) twice into every
  page, and the second copy throws "Identifier ... has already been declared" (the first copy
  already ran, so nothing breaks). Fixed upstream in Sphinx 8 (sphinx-doc/sphinx#13402), which
  Jupyter Book 1 cannot use (it requires ``sphinx~=7.0``). Such an error is tolerated only when
  the page really contains the same inline script twice and that script declares the
  identifier; it is listed as a known issue.

Pages are served by a local HTTP server, as a web host would serve them (``file://`` URLs behave
differently: no fetch, other storage rules). The browser is Debian's ``chromium`` driven through
the system ``chromedriver`` (``scripts/install_browser.sh``); both paths are given to Selenium
explicitly, so Selenium Manager never tries to download a driver.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import http.server
import os
import re
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import yaml

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
WINDOW_WIDTH, WINDOW_HEIGHT = 1280, 1000
SCREENSHOT_MAX_HEIGHT = 6000  # px; taller pages are cut, the PNG stays a few MB at most
PAGE_LOAD_TIMEOUT_S = 60
IMAGE_WAIT_TIMEOUT_S = 10
# Jupyter Book 1's default when _config.yml names no branch (jupyter_book/default_config.yml).
DEFAULT_BRANCH = "master"
COLAB_HOST = "colab.research.google.com"
# Folders of the build that hold no pages: theme assets (any .html there is a template
# fragment), copies of the sources and the images. The generated genindex.html and search.html
# are kept: every page links to them, and the search page is the most scripted one.
NOT_PAGES = {"_static", "_sources", "_images"}

KNOWN_DUPLICATE_SCRIPT_NOTE = (
    "Sphinx 7 writes this inline script twice (sphinx-doc/sphinx#13402, fixed in Sphinx 8; "
    "Jupyter Book 1 requires Sphinx 7)"
)


@dataclass(frozen=True)
class Problem:
    """Something wrong with one page."""

    page: str  # relative to the build folder, e.g. "book/01_data.html"
    kind: str
    detail: str
    # the missing or broken file, relative to the build folder: one report per file and page
    target: str = ""

    def __str__(self) -> str:
        return f"{self.page}: {self.kind}: {self.detail}"


@dataclass
class PageFacts:
    """What the checks need from one HTML file."""

    ids: set[str] = field(default_factory=set)  # every id="..." and <a name="...">
    links: list[str] = field(default_factory=list)  # <a href>, <area href>, meta refresh
    resources: list[str] = field(default_factory=list)  # <img src>, <script src>, <link href>...
    inline_scripts: list[str] = field(default_factory=list)
    is_redirect: bool = False  # <meta http-equiv="refresh">: the browser would leave at once


# The attribute through which each tag loads a file into the page.
RESOURCE_ATTRIBUTES = {"img": "src", "script": "src", "link": "href", "source": "src",
                       "iframe": "src", "video": "src", "audio": "src", "embed": "src"}


class _FactsParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.facts = PageFacts()
        self._script: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "id" in values:
            self.facts.ids.add(values["id"])
        if tag == "a" and "name" in values:
            self.facts.ids.add(values["name"])
        if tag in ("a", "area") and "href" in values:
            self.facts.links.append(values["href"])
        elif tag in RESOURCE_ATTRIBUTES and RESOURCE_ATTRIBUTES[tag] in values:
            # <link rel="next" href="page.html"> navigates, it does not load anything
            is_navigation = tag == "link" and values.get("rel") not in (
                "stylesheet", "icon", "shortcut icon", "preload", "modulepreload")
            target = self.facts.links if is_navigation else self.facts.resources
            target.append(values[RESOURCE_ATTRIBUTES[tag]])
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            self.facts.is_redirect = True
            _, _, url = values.get("content", "").partition("url=")
            if url.strip():
                self.facts.links.append(url.strip())
        if tag == "script" and "src" not in values:
            self._script = []

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.facts.inline_scripts.append("".join(self._script).strip())
            self._script = None


def read_page_facts(path: Path) -> PageFacts:
    """Ids, links, resources and inline scripts of the HTML file ``path``."""
    parser = _FactsParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return parser.facts


def find_pages(html_dir: Path) -> list[Path]:
    """Every page of the build, sorted, without the folders listed in ``NOT_PAGES``."""
    return sorted(path for path in html_dir.rglob("*.html")
                  if path.relative_to(html_dir).parts[0] not in NOT_PAGES)


def page_name(html_dir: Path, page: Path) -> str:
    """``page`` relative to the build folder, with forward slashes."""
    return page.relative_to(html_dir).as_posix()


def is_internal(url: str) -> bool:
    """Whether ``url`` refers to the build itself (no scheme, no host)."""
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc


def resolve_reference(html_dir: Path, page: Path, url: str) -> tuple[Path | None, str]:
    """The file an internal ``url`` on ``page`` points at, and its (unquoted) fragment.

    A pure ``#fragment`` points at ``page`` itself. A folder stands for its ``index.html``, as a
    web server would serve it. The file is ``None`` when the reference leaves the build folder.
    """
    parts = urlsplit(url)
    fragment = unquote(parts.fragment)
    if not parts.path:
        return page, fragment
    path = unquote(parts.path)
    base = html_dir if path.startswith("/") else page.parent
    target = (base / path.lstrip("/")).resolve()
    if not target.is_relative_to(html_dir.resolve()):
        return None, fragment
    if target.is_dir():
        target = target / "index.html"
    return target, fragment


def check_references(html_dir: Path, pages: list[Path],
                     facts: dict[Path, PageFacts]) -> list[Problem]:
    """Broken internal links, missing anchors and missing local resources of ``pages``.

    Parameters
    ----------
    html_dir : Path
        The build folder (``_build/html``).
    pages : list of Path
        The pages to check (``find_pages``); links may point at any file of the build.
    facts : dict
        Cache of parsed pages by resolved path, filled here so that each file is parsed once.

    Returns
    -------
    list of Problem
        Kinds "broken link", "missing anchor" and "missing file", in page order.
    """

    def facts_of(path: Path) -> PageFacts:
        key = path.resolve()
        if key not in facts:
            facts[key] = read_page_facts(key)
        return facts[key]

    problems = []
    for page in pages:
        name = page_name(html_dir, page)
        page_facts = facts_of(page)
        references = [(url, "link") for url in page_facts.links]
        references += [(url, "resource") for url in page_facts.resources]
        # once per page: the same link often sits in the text and in both tables of contents
        for url, role in dict.fromkeys(references):
            if not url or not is_internal(url) or url == "#":
                continue
            target, fragment = resolve_reference(html_dir, page, url)
            if target is None:
                problems.append(Problem(name, "broken link", f"{url} (outside the build)"))
            elif not target.is_file():
                kind = "broken link" if role == "link" else "missing file"
                problems.append(Problem(name, kind, f"{url} (no such file in the build)",
                                        target.relative_to(html_dir.resolve()).as_posix()))
            elif (fragment and role == "link" and target.suffix == ".html"
                  and fragment not in facts_of(target).ids):
                problems.append(Problem(name, "missing anchor",
                                        f"{url} (no id {fragment!r} on that page)"))
    return problems


def load_book_config(path: Path) -> dict[str, Any]:
    """The book's ``_config.yml``."""
    return yaml.safe_load(path.read_text()) or {}


def find_book_config(html_dir: Path) -> Path | None:
    """The ``_config.yml`` of the book built into ``html_dir`` (``<book>/_build/html``)."""
    for folder in html_dir.resolve().parents:
        if (folder / "_config.yml").is_file():
            return folder / "_config.yml"
    return None


def expected_colab_url(config: dict[str, Any], source: str) -> str | None:
    """The Colab launch URL Jupyter Book should render for one page, as sphinx-book-theme does.

    Parameters
    ----------
    config : dict
        The book's ``_config.yml``: ``repository.url``, ``repository.branch`` (default
        ``master``, as in Jupyter Book), ``repository.path_to_book`` and
        ``launch_buttons.colab_url``.
    source : str
        The page's source relative to the book, e.g. ``book/01_data.ipynb``.

    Returns
    -------
    str or None
        ``<colab_url>/github/<owner>/<repo>/blob/<branch>/<path_to_book>/<source>``; ``None`` when
        the book configures no Colab button or its repository is not on GitHub (Colab opens
        GitHub notebooks only).
    """
    colab_url = ((config.get("launch_buttons") or {}).get("colab_url") or "").strip("/")
    repository = config.get("repository") or {}
    parts = urlsplit((repository.get("url") or "").strip())
    owner_and_repo = parts.path.strip("/").removesuffix(".git").split("/")
    if not colab_url or parts.netloc != "github.com" or len(owner_and_repo) != 2:
        return None
    owner, repo = owner_and_repo
    branch = repository.get("branch") or DEFAULT_BRANCH
    book_folder = (repository.get("path_to_book") or "").strip("/")
    path_in_repo = f"{book_folder}/{source}" if book_folder else source
    return f"{colab_url}/github/{owner}/{repo}/blob/{branch}/{path_in_repo}"


def source_of(html_dir: Path, page: Path) -> str | None:
    """The source file ``page`` was built from (``book/01_data.ipynb``), from ``_sources``.

    ``None`` for generated pages (genindex, search) and redirects, which have no source.
    """
    docname = page.relative_to(html_dir).with_suffix("").as_posix()
    for copy in sorted((html_dir / "_sources").glob(f"{docname}.*")):
        # Sphinx may add .txt to the copy (html_sourcelink_suffix); the source is without it
        return f"{docname}{copy.name[len(Path(docname).name):].removesuffix('.txt')}"
    return None


def check_colab_links(html_dir: Path, pages: list[Path], facts: dict[Path, PageFacts],
                      config: dict[str, Any]) -> list[Problem]:
    """Notebook pages without a Colab launch link, and Colab links to the wrong notebook."""
    colab_url = ((config.get("launch_buttons") or {}).get("colab_url") or "").strip("/")
    colab_hosts = {COLAB_HOST, urlsplit(colab_url).netloc} - {""}
    problems = []
    for page in pages:
        name = page_name(html_dir, page)
        source = source_of(html_dir, page)
        page_facts = facts.get(page.resolve()) or read_page_facts(page)
        links = sorted({url for url in page_facts.links if urlsplit(url).netloc in colab_hosts})
        expected = expected_colab_url(config, source) if source else None
        if expected is None:
            continue
        if source.endswith(".ipynb") and not links:
            problems.append(Problem(name, "Colab link", f"none; expected {expected}"))
        problems += [Problem(name, "Colab link", f"{url}; expected {expected}")
                     for url in links if url != expected]
    return problems


def duplicated_declaration(message: str, facts: PageFacts) -> bool:
    """Whether a "has already been declared" error comes from a script written twice.

    That is the Sphinx 7 bug described in this module's docstring, not the page's own error.
    """
    match = re.search(r"Identifier '([\w$]+)' has already been declared", message)
    if not match:
        return False
    declares = re.compile(rf"\b(?:const|let|class)\s+{re.escape(match.group(1))}\b")
    counts = Counter(facts.inline_scripts)
    return any(count > 1 and declares.search(body) for body, count in counts.items())


@dataclass
class ConsoleFindings:
    """A page's browser log, sorted by what it means."""

    errors: list[str] = field(default_factory=list)  # the page's own: fail
    missing_local: list[str] = field(default_factory=list)  # a local file failed to load: fail
    warnings: list[str] = field(default_factory=list)  # console.error and the like
    offline: list[str] = field(default_factory=list)  # external URLs that could not load
    known: list[str] = field(default_factory=list)  # the Sphinx 7 duplicate-script bug


def classify_log(entries: list[dict[str, Any]], local_base: str,
                 facts: PageFacts) -> ConsoleFindings:
    """Sort Chromium's SEVERE log ``entries`` for one page (see the module docstring)."""
    findings = ConsoleFindings()
    for entry in entries:
        if entry.get("level") != "SEVERE":
            continue
        message, source = entry.get("message", ""), entry.get("source", "")
        if source == "network":
            url = message.split(" ", 1)[0]
            if not url.startswith(local_base):
                findings.offline.append(url)
            elif urlsplit(url).path != "/favicon.ico":  # asked for by the browser, not the page
                findings.missing_local.append(message)
        elif source == "javascript":
            target = findings.known if duplicated_declaration(message, facts) else findings.errors
            target.append(message)
        else:
            findings.warnings.append(message)
    return findings


def local_target(url: str, base_url: str) -> str:
    """The file of the build a URL of the local server names (``""`` for other URLs)."""
    if not url.startswith(base_url):
        return ""
    return unquote(urlsplit(url).path).lstrip("/")


def without_repeats(problems: list[Problem]) -> list[Problem]:
    """``problems`` without later reports of a file already reported on the same page.

    A missing image is found three times: in the HTML file, as an image that did not load and
    as a failed request; the first report is enough.
    """
    seen: set[tuple[str, str]] = set()
    kept = []
    for problem in problems:
        key = (problem.page, problem.target)
        if problem.target and key in seen:
            continue
        seen.add(key)
        kept.append(problem)
    return kept


def screenshot_names(html_dir: Path, pages: list[Path]) -> dict[Path, str]:
    """``<page-name>.png`` for each page; the path joined by ``__`` where names would clash."""
    stems = Counter(page.stem for page in pages)
    return {page: (page.stem if stems[page.stem] == 1
                   else page.relative_to(html_dir).with_suffix("").as_posix().replace("/", "__"))
            + ".png" for page in pages}


# ---------------------------------------------------------------------------------------------
# The browser part

WAIT_FOR_IMAGES_JS = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
images.forEach(image => { image.loading = 'eager'; });  // lazy images load now
const settled = images.map(image => image.complete ? Promise.resolve()
    : new Promise(resolve => { image.addEventListener('load', resolve);
                               image.addEventListener('error', resolve); }));
const timeout = new Promise(resolve => setTimeout(resolve, arguments[0]));
Promise.race([Promise.all(settled), timeout]).then(async () => {
  const broken = [];
  for (const image of images) {
    if (!image.complete || image.naturalWidth !== 0) continue;
    // an SVG without intrinsic size also has naturalWidth 0: decode() tells them apart
    try { await image.decode(); } catch (error) {
      broken.push([image.getAttribute('src') || '(no src)', image.currentSrc || image.src]);
    }
  }
  done(broken);
});
"""

# Elements inside the article that are wider than the place they are shown in: scroll containers
# whose content is wider than their box (readers scroll sideways), and content elements whose
# right edge passes the content column (cut off, or drawn over the sidebar). An element inside
# one already reported is not reported again.
OVERFLOW_JS = """
const column = document.querySelector('article.bd-article') || document.querySelector('main')
    || document.body;
const columnBox = column.getBoundingClientRect();
const CONTENT = 'table, pre, img, svg, iframe, video, canvas, mjx-container, figure, '
    + '.output, .cell_output, .math';
const describe = element => {
  const inner = element.matches('table, pre, img, svg') ? element
      : (element.querySelector('table, pre, img, svg') || element);
  const tag = inner.tagName.toLowerCase();
  const text = tag === 'img' ? (inner.getAttribute('src') || '')
      : (inner.innerText || inner.textContent || '');
  const section = element.closest('section');
  return {tag: tag, classes: String(element.className.baseVal ?? element.className),
          text: text.trim().replace(/\\s+/g, ' ').slice(0, 60),
          section: section ? section.id : ''};
};
const found = [];
const reported = [];
// the body of a closed <details> (e.g. a full table one click away) is not shown to the reader
const folded = element => {
  const details = element.closest('details:not([open])');
  return details !== null && element !== details && !element.closest('summary');
};
for (const element of column.querySelectorAll('*')) {
  if (element.getClientRects().length === 0 || folded(element)) continue;  // not rendered
  if (reported.some(outer => outer.contains(element))) continue;
  const overflowX = getComputedStyle(element).overflowX;
  const box = element.getBoundingClientRect();
  if ((overflowX === 'auto' || overflowX === 'scroll')
      && element.scrollWidth > element.clientWidth + 1) {
    found.push(Object.assign(describe(element), {kind: 'scrolls sideways',
        content: element.scrollWidth, visible: element.clientWidth}));
    reported.push(element);
  } else if (element.matches(CONTENT) && box.right > columnBox.right + 1) {
    found.push(Object.assign(describe(element), {kind: 'runs past the column',
        content: Math.round(box.right - columnBox.left), visible: Math.round(columnBox.width)}));
    reported.push(element);
  }
}
const root = document.documentElement;
if (root.scrollWidth > root.clientWidth + 1) {
  found.push({kind: 'page scrolls sideways', tag: 'html', classes: '', text: '', section: '',
              content: root.scrollWidth, visible: root.clientWidth});
}
return found;
"""


@dataclass(frozen=True)
class Overflow:
    """One element wider than its place: ``content`` px of content in ``visible`` px."""

    page: str
    kind: str
    tag: str
    text: str
    section: str
    content: int
    visible: int

    def __str__(self) -> str:
        where = f" in #{self.section}" if self.section else ""
        text = f' "{self.text}"' if self.text else ""
        return (f"{self.page}{where}: <{self.tag}>{text}: {self.content} px in {self.visible} px"
                f" ({self.kind})")


@contextlib.contextmanager
def serve_directory(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free local port; yields the base URL."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def chromedriver_path() -> str:
    """The system chromedriver (Debian's ``chromium-driver``)."""
    return shutil.which("chromedriver") or "/usr/bin/chromedriver"


def open_browser(allow_network: bool = False) -> WebDriver:
    """Headless Chromium through the system chromedriver, logging the browser console."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     f"--window-size={WINDOW_WIDTH},{WINDOW_HEIGHT}", "--hide-scrollbars"):
        options.add_argument(argument)
    if not allow_network:
        # every host but the local server is "not found" at once: no waiting on timeouts
        options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the paths are explicit, so Selenium Manager is not asked; and if it were, not to download
    os.environ.setdefault("SE_OFFLINE", "true")
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver_path()),
                              options=options)
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
    driver.set_script_timeout(IMAGE_WAIT_TIMEOUT_S + 5)
    return driver


def save_full_page_screenshot(driver: WebDriver, path: Path) -> None:
    """A PNG of the whole page (at most ``SCREENSHOT_MAX_HEIGHT`` px) at the window's width."""
    height = driver.execute_script(
        "return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": WINDOW_WIDTH, "height": min(int(height), SCREENSHOT_MAX_HEIGHT),
        "deviceScaleFactor": 1, "mobile": False})
    try:
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@dataclass
class BrowserResults:
    """What the browser found on all pages."""

    problems: list[Problem] = field(default_factory=list)
    overflows: list[Overflow] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    known: list[Problem] = field(default_factory=list)
    offline: dict[str, set[str]] = field(default_factory=dict)  # external URL -> pages
    screenshots: list[Path] = field(default_factory=list)


def check_in_browser(html_dir: Path, pages: list[Path], facts: dict[Path, PageFacts],
                     screenshot_pages: dict[Path, Path],
                     allow_network: bool = False) -> BrowserResults:
    """Open each page; collect broken images, console errors, overflow and screenshots."""
    results = BrowserResults()
    with serve_directory(html_dir) as base_url:
        driver = open_browser(allow_network)
        try:
            for page in pages:
                name = page_name(html_dir, page)
                driver.get(base_url + name)
                broken = driver.execute_async_script(WAIT_FOR_IMAGES_JS,
                                                     IMAGE_WAIT_TIMEOUT_S * 1000)
                results.problems += [Problem(name, "image not loaded", src,
                                             local_target(url, base_url))
                                     for src, url in broken]
                results.overflows += [
                    Overflow(name, item["kind"], item["tag"], item["text"], item["section"],
                             int(item["content"]), int(item["visible"]))
                    for item in driver.execute_script(OVERFLOW_JS)]
                if page in screenshot_pages:
                    save_full_page_screenshot(driver, screenshot_pages[page])
                    results.screenshots.append(screenshot_pages[page])
                findings = classify_log(driver.get_log("browser"), base_url,
                                        facts.get(page.resolve()) or read_page_facts(page))
                results.problems += [Problem(name, "JavaScript error", message)
                                     for message in findings.errors]
                results.problems += [Problem(name, "missing file", message,
                                             local_target(message.split(" ", 1)[0], base_url))
                                     for message in findings.missing_local]
                results.warnings += [Problem(name, "console", m) for m in findings.warnings]
                results.known += [Problem(name, "known toolchain error", m)
                                  for m in findings.known]
                for url in findings.offline:
                    results.offline.setdefault(url, set()).add(name)
        finally:
            driver.quit()
    return results


def without_location(message: str) -> str:
    """A console message without its leading ``<url> <line>:<column>``."""
    return re.sub(r"^\S+ \d+:\d+ ", "", message)


def report(results: BrowserResults, static_problems: list[Problem], fail_on_overflow: bool,
           summary: str) -> int:
    """Print the findings; the exit status (1 on any failure)."""
    failures = without_repeats(static_problems + results.problems)
    if fail_on_overflow:
        failures += [Problem(o.page, "overflow", str(o)) for o in results.overflows]
    print(summary)
    if results.offline:
        print(f"\nexternal resources that did not load (no network; not the book's fault): "
              f"{len(results.offline)}")
        for url, where in sorted(results.offline.items()):
            print(f"  {url} ({len(where)} pages)")
    if results.known:
        messages = Counter(without_location(problem.detail) for problem in results.known)
        print(f"\nknown toolchain errors, tolerated ({KNOWN_DUPLICATE_SCRIPT_NOTE}):")
        for message, count in sorted(messages.items()):
            print(f"  {message} ({count} pages)")
    if results.warnings:
        print(f"\nconsole messages (warnings, not failures): {len(results.warnings)}")
        for problem in results.warnings:
            print(f"  {problem}")
    consequence = "fails" if fail_on_overflow else "reported only; fails with --fail-on-overflow"
    tags = Counter(overflow.tag for overflow in results.overflows)
    print(f"\nhorizontal overflow ({consequence}): {len(results.overflows)} elements"
          + "".join(f", {count} <{tag}>" for tag, count in tags.most_common()))
    for overflow in results.overflows:
        print(f"  {overflow}")
    print(f"\nfailures: {len(failures)}")
    for problem in failures:
        print(f"  {problem}")
    print("\nFAILED" if failures else "\nOK")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    """Run every check on the build named in ``argv``; the exit status (0, 1, or 2: no build)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", type=Path, help="the built book, e.g. _build/html")
    parser.add_argument("--screenshots", type=Path,
                        help="folder for one PNG per chapter (default: <html_dir>/../screenshots)")
    parser.add_argument("--config", type=Path,
                        help="the book's _config.yml (default: found above html_dir)")
    parser.add_argument("--fail-on-overflow", action="store_true",
                        help="fail when tables or code blocks are wider than the column")
    parser.add_argument("--allow-network", action="store_true",
                        help="let the browser reach external hosts (CDNs)")
    args = parser.parse_args(argv)

    html_dir = args.html_dir.resolve()
    pages = find_pages(html_dir) if html_dir.is_dir() else []
    config_path = args.config or find_book_config(html_dir)
    if not pages or config_path is None:
        print(f"no pages in {html_dir}, or no _config.yml above it: build the book first",
              file=sys.stderr)
        return 2
    missing = [path for path in (CHROMIUM, chromedriver_path()) if not Path(path).is_file()]
    if missing:
        print(f"missing {', '.join(missing)}: run scripts/install_browser.sh", file=sys.stderr)
        return 2

    start = time.perf_counter()
    facts: dict[Path, PageFacts] = {}
    static_problems = check_references(html_dir, pages, facts)
    static_problems += check_colab_links(html_dir, pages, facts, load_book_config(config_path))
    browser_pages = [page for page in pages if not facts[page.resolve()].is_redirect]
    chapters = [page for page in browser_pages if source_of(html_dir, page)]
    screenshot_dir = (args.screenshots or html_dir.parent / "screenshots").resolve()
    screenshot_dir.mkdir(parents=True, exist_ok=True)
    screenshot_pages = {page: screenshot_dir / png
                        for page, png in screenshot_names(html_dir, chapters).items()}
    results = check_in_browser(html_dir, browser_pages, facts, screenshot_pages,
                               args.allow_network)
    summary = (f"checked {len(pages)} pages ({len(browser_pages)} in Chromium) in "
               f"{time.perf_counter() - start:.1f} s; {len(results.screenshots)} screenshots in "
               f"{screenshot_dir}")
    return report(results, static_problems, args.fail_on_overflow, summary)


if __name__ == "__main__":
    sys.exit(main())
