"""report.html: report.md as one self-contained page (figures embedded, tables as tables)."""

import base64
import re
import shutil
from html.parser import HTMLParser

import pytest

from arithlab.errors import ArithlabError
from arithlab.plots import report
from arithlab.report_html import to_html

PNG = b"\x89PNG\r\n\x1a\n" + b"figure bytes"


class Page(HTMLParser):
    """What a page holds: its tags, the attributes that load or link something, table cells."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.cells: list[str] = []
        self._in_cell = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [value for name, value in attrs if name in ("src", "href")]
        self._in_cell = tag in ("td", "th")

    def handle_endtag(self, tag):
        self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells.append(data)


def check_self_contained(folder) -> Page:
    """report.html beside report.md: it parses, fetches nothing, and embeds every figure
    report.md references, byte for byte."""
    markdown = (folder / "report.md").read_text()
    page = Page((folder / "report.html").read_text())
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    embedded = [base64.b64decode(link.split(",", 1)[1]) for link in page.links]
    assert embedded == [(folder / name).read_bytes() for name in figures]
    assert all(link.startswith("data:image/png;base64,") for link in page.links)
    assert "http" not in (folder / "report.html").read_text()
    return page


def test_markdown_headings_tables_and_figures_become_one_page(tmp_path):
    (tmp_path / "a.png").write_bytes(PNG)
    markdown = (
        "# Sweep report: x\n\nSome text <b>.\n\n| format | acc |\n|---|---|\n| plain | 0.5 |\n\n## A\n\n![A](a.png)\n"
    )
    (tmp_path / "report.md").write_text(markdown)
    (tmp_path / "report.html").write_text(to_html(markdown, tmp_path))
    page = check_self_contained(tmp_path)
    assert page.tags.count("table") == 1 and page.tags.count("tr") == 2  # the separator row left out
    assert page.cells == ["format", "acc", "plain", "0.5"]
    assert "<p>Some text &lt;b&gt;.</p>" in (tmp_path / "report.html").read_text()
    assert ["h1", "h2"] == [tag for tag in page.tags if tag.startswith("h") and tag[1:].isdigit()]


def test_a_missing_figure_is_an_error_naming_it(tmp_path):
    with pytest.raises(ArithlabError, match="gone.png: figure missing"):
        to_html("![gone](gone.png)\n", tmp_path)


def test_a_runs_report_writes_report_html_with_its_heat_map(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    report(run)
    page = check_self_contained(run)
    assert len(page.links) == 1  # lengths.png
