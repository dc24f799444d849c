"""HTML building blocks of the report: every value is escaped unless it is ``Safe`` (markup built here).

The page carries a Content-Security-Policy that allows only inline styles and ``data:`` images, so the file makes
no request and runs no script even if some markup slipped through unescaped.
"""

import html
import json
import math

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1800px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:2em}h3{margin-bottom:.3em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.row{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}.row>figure{flex:1 1 0;min-width:420px}
figure{margin:.5em 0}figure img{max-width:100%;height:auto}figcaption{font-size:.85em;color:#444}
.pass{color:#176d2c;font-weight:bold}.fail{color:#b00020;font-weight:bold}
.note{background:#fff6d5;padding:.4em .8em;border-left:4px solid #e0b400}
pre{background:#f7f7f7;padding:.6em;overflow:auto;max-height:30em;font-size:.8em}
nav a{margin-right:1em}
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


class Safe(str):
    """Markup built by this package: inserted as is."""


def esc(value):
    """HTML text of any value (``Safe`` markup passes through)."""
    return value if isinstance(value, Safe) else Safe(html.escape(str(value), quote=True))


def join(parts):
    return Safe("".join(esc(part) for part in parts))


def tag(name, content="", **attrs):
    """``<name attrs>content</name>`` with escaped attributes and content (``class_`` for class)."""
    attributes = "".join(f' {key.rstrip("_")}="{html.escape(str(value), quote=True)}"' for key, value in attrs.items())
    body = join(content) if isinstance(content, (list, tuple)) else esc(content)
    return Safe(f"<{name}{attributes}>{body}</{name}>")


def number(value, digits=4):
    """A number for a table cell: ``%.4g``; '-' for None, 'NaN' for non-finite."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return "NaN" if not math.isfinite(value) else f"{value:.{digits}g}"


def interval(low, high):
    return "-" if low is None or high is None else f"[{number(low)}, {number(high)}]"


def table(header, rows, numeric=()):
    """A table; columns whose index is in ``numeric`` are right-aligned."""
    head = tag("tr", [tag("th", h) for h in header])
    body = [tag("tr", [tag("td", cell, class_="num") if i in numeric else tag("td", cell)
                       for i, cell in enumerate(row)]) for row in rows]
    return tag("table", [head, *body])


def flat_items(mapping, prefix=""):
    """(dotted key, text) pairs of a nested mapping, lists and scalars as compact JSON."""
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from flat_items(value, f"{name}.")
        else:
            yield name, value if isinstance(value, str) else json.dumps(value, default=str)


def key_values(mapping):
    return table(("key", "value"), list(flat_items(mapping)))


def figure(uri, caption):
    return tag("figure", [Safe(f'<img src="{uri}" alt="{html.escape(caption, quote=True)}">'),
                          tag("figcaption", caption)])


def section(anchor, title, content):
    return tag("section", [tag("h2", title), *content], id=anchor)


def page(title, nav, sections):
    """The whole document."""
    links = tag("nav", [tag("a", label, href=f"#{anchor}") for anchor, label in nav])
    head = Safe(f'<meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{CSP}">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f'<link rel="icon" href="data:,"><title>{esc(title)}</title><style>{CSS}</style>')
    body = join([tag("h1", title), links, *sections])
    return f"<!DOCTYPE html>\n<html lang=\"en\"><head>{head}</head><body>{body}</body></html>\n"
