"""The report sites as a person sees them in a browser: headless Chromium opens each page, keeps
a screenshot, and the page's DOM after its scripts ran is read back for what a reader sees.

:func:`open_pages` runs one Chromium per page, a few at once (a page waits on its scripts more
than it uses the CPU); :func:`visible_text` is the text outside scripts, styles and hidden
code; :func:`unreadable` finds what no reader should meet: ``NaN``, ``None``, ``NaT``, a
Python dict's repr, a float with an exponent; :func:`navigation` reads a page's sidebar.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

from helpers.core.paths import project_root

#: Where the screenshots of the report pages are kept after a test run (git ignores it).
SCREENSHOTS = project_root() / "test-artifacts" / "screenshots"

#: What a reader should never meet in a page's visible text.
UNREADABLE = {
    "NaN": re.compile(r"\bNaN\b|\bnan\b"),
    "None": re.compile(r"\bNone\b"),
    "NaT": re.compile(r"\bNaT\b"),
    "a dict repr": re.compile(r"\{'[^']*': "),
    # not inside a word or an id: a run id's hex part (20261202T125123-1393e535) is not a number
    "a float in scientific notation": re.compile(r"(?<![\w.+-])[-+]?\d+(?:\.\d+)?[eE][-+]?\d+(?![\w.])"),
}
_SKIPPED = {"script", "style", "head", "template", "noscript", "title"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
_BLOCKS = {"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "section", "details", "summary", "pre", "table", "nav"}


class _Visible(HTMLParser):
    """Text a reader sees: not in scripts or styles, not in hidden code inputs (nbconvert's
    ``jp-InputArea``, which the reports leave out anyway)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.hidden = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            return
        classes = dict(attrs).get("class") or ""
        hidden = tag in _SKIPPED or "jp-InputArea" in classes or "hidden" in dict(attrs)
        self.stack.append((tag, hidden))
        self.hidden += hidden
        if tag in _BLOCKS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" | ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        while self.stack:  # HTML closes open elements implicitly: unwind to the matching one
            name, hidden = self.stack.pop()
            self.hidden -= hidden
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def visible_text(dom: str) -> str:
    parser = _Visible()
    parser.feed(dom)
    return re.sub(r"\n\s*\n+", "\n", "".join(parser.parts))


def unreadable(text: str) -> list[str]:
    """Each thing a reader should not meet, with the line it is on."""
    found = []
    for line in text.splitlines():
        for what, pattern in UNREADABLE.items():
            if pattern.search(line):
                found.append(f"{what}: {line.strip()[:200]}")
    return found


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.links: list[tuple[str, bool]] = []  # (href, marked current)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "nav" and "site-nav" in (values.get("class") or ""):
            self.depth += 1
        elif tag == "nav" and self.depth:
            self.depth += 1
        elif tag == "a" and self.depth and values.get("href"):
            self.links.append((str(values["href"]), values.get("aria-current") == "page"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav" and self.depth:
            self.depth -= 1


def navigation(dom: str) -> list[tuple[str, bool]]:
    """The links of the page's site navigation (``nav.site-nav``): (href, marked as the current page)."""
    parser = _Links()
    parser.feed(dom)
    return parser.links


def open_pages(pages: list[Path], screenshots: Path, profiles: Path, at_once: int = 4) -> dict[Path, str]:
    """Each page's DOM after its scripts ran, and its screenshot in ``screenshots/<page>.png``."""
    from tests.support import chromium

    screenshots.mkdir(parents=True, exist_ok=True)

    def one(numbered: tuple[int, Path]) -> tuple[Path, str]:
        number, page = numbered
        shot = screenshots / f"{page.stem}.png"
        dom = chromium(page.as_uri(), profiles / f"profile-{number}", "--dump-dom", f"--screenshot={shot}",
                       "--window-size=1280,1000", "--virtual-time-budget=10000")
        return page, dom

    with ThreadPoolExecutor(max_workers=at_once) as pool:
        return dict(pool.map(one, enumerate(pages)))
