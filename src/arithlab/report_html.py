"""report.html: a report.md as one self-contained page, its figures embedded as data: URIs
and its tables as HTML tables, so that the page opens anywhere on its own (mailed, or moved
without its folder) and fetches nothing.

It reads the Markdown that plots.py writes, nothing more general: `#` and `##` headings,
tables (lines starting with `|`, the second one the separator), figures (`![title](file)`
alone on a line) and lines of text.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import re
from itertools import groupby
from pathlib import Path

from arithlab.errors import ArithlabError

FIGURE = re.compile(r"!\[(?P<title>[^\]]*)\]\((?P<file>[^)]+)\)")
SEPARATOR = re.compile(r"\|(\s*:?-+:?\s*\|)+")
STYLE = """
body { font-family: sans-serif; max-width: 70em; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f3f3f3; }
figure { margin: 1em 0; }
img { max-width: 100%; }
"""


def to_html(markdown: str, folder: Path) -> str:
    """The page for `markdown`, whose figures are files in `folder`."""
    lines = markdown.splitlines()
    title = next((line[2:] for line in lines if line.startswith("# ")), "report")
    body = []
    for is_table, group in groupby(lines, key=lambda line: line.startswith("|")):
        if is_table:
            body.append(_table(list(group)))
        else:
            body += [_block(line, folder) for line in group if line.strip()]
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def _block(line: str, folder: Path) -> str:
    figure = FIGURE.fullmatch(line.strip())
    if figure:
        title, source = html.escape(figure["title"]), _data_uri(folder / figure["file"])
        return f'<figure><img src="{source}" alt="{title}"><figcaption>{title}</figcaption></figure>'
    for mark, tag in (("## ", "h2"), ("# ", "h1")):
        if line.startswith(mark):
            return f"<{tag}>{html.escape(line[len(mark) :])}</{tag}>"
    return f"<p>{html.escape(line)}</p>"


def _data_uri(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        raise ArithlabError(f"{path}: figure missing, cannot embed it in report.html") from None
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def _table(rows: list[str]) -> str:
    """A Markdown table: the first row the header, separator rows left out."""
    cells = [[html.escape(c.strip()) for c in row.strip().strip("|").split("|")] for row in rows]
    kept = [row_cells for row, row_cells in zip(rows, cells) if not SEPARATOR.fullmatch(row.strip())]
    header = "".join(f"<th>{c}</th>" for c in kept[0])
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>\n" for row in kept[1:])
    return f"<table>\n<tr>{header}</tr>\n{body}</table>"
