"""How the report is written: numbers (:func:`fmt`), tables (:class:`Table`, as CSV, Markdown
and HTML) and the document's blocks (:func:`markdown`, :func:`html_page`).

A report is a list of blocks, each a tuple whose first item names its kind:
``("h", level, text)``, ``("p", text)``, ``("list", [text, ...])``, ``("img", path, alt)`` and
``("table", Table)``. Text may hold two inline forms, ``**bold**`` and ```code```.
"""

from __future__ import annotations

import csv
import html
import io
import re


def fmt(value) -> str:
    """How every number appears in the tables: 4 significant digits; None as "n/a"."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value)
    return str(value)


class Table:
    """A titled table written as CSV (raw values) and Markdown / HTML (formatted)."""

    def __init__(self, name: str, title: str, header: list[str], rows: list[list]):
        self.name, self.title, self.header, self.rows = name, title, header, rows

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.header)
        for row in self.rows:
            writer.writerow(["" if v is None else (";".join(map(str, v)) if isinstance(v, list)
                                                   else v) for v in row])
        return buffer.getvalue()

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.header) + " |",
                 "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row)
                       + "</tr>" for row in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def markdown(blocks: list) -> str:
    """The blocks as one Markdown document."""
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + block[2])
        elif kind == "p":
            out.append(block[1])
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1]})")
        elif kind == "table":
            out.append(f"**{block[1].title}**\n\n{block[1].markdown()}")
    return "\n\n".join(out) + "\n"


def html_page(blocks: list, title: str) -> str:
    """The blocks as one HTML page titled ``title``."""
    parts = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            parts.append(f"<h{block[1]}>{_inline(block[2])}</h{block[1]}>")
        elif kind == "p":
            parts.append(f"<p>{_inline(block[1])}</p>")
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "img":
            parts.append(f'<p><img src="{html.escape(block[1])}" alt="{html.escape(block[2])}"'
                         ' style="max-width:100%"></p>')
        elif kind == "table":
            parts.append(f"<p><b>{html.escape(block[1].title)}</b></p>{block[1].html()}")
    style = ("body{font-family:sans-serif;max-width:70em;margin:auto;padding:1em}"
             "table{border-collapse:collapse;margin-bottom:1em}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>\n" + "\n".join(parts)
            + "\n</body></html>\n")


def _inline(text: str) -> str:
    """Escape, then render the two inline forms the report uses: **bold** and `code`."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)
