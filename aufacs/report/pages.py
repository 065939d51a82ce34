"""Executed notebooks rendered to self-contained HTML pages that open with the network off.

nbconvert's ``lab`` template loads require.js, MathJax and mermaid from a CDN, and the widget
manager too where a notebook holds widget state. The reports need none of them (no LaTeX, no
diagrams, and the heatmap browser is plain HTML and JavaScript:
:mod:`aufacs.report.browser`), so :func:`export_html` renders with a template that leaves
those scripts out and embeds every image; :func:`offline_problems` names what in a page
would still need the network or a kernel.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

#: A template that is nbconvert's ``lab`` template without any script from the network.
OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block body_header -%}
{{ super() }}{{ resources.get('navigation', '') }}
{%- endblock body_header -%}
{%- block body_footer -%}
{{ resources.get('navigation', '') }}{{ super() }}
{%- endblock body_footer -%}
"""
#: MIME type of a widget view: drawn only by a kernel, or by a page that embeds its state.
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

_EXTERNAL = re.compile(r"""<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*["']?(https?:)?//""")


@dataclass(frozen=True)
class PageLinks:
    """Where a report page links to: the pages before and after it in the study (file names
    beside it, None at either end) and the study's index."""

    previous: str | None
    next: str | None
    index: str = "index.html"


def navigation_html(links: PageLinks) -> str:
    """A one-line bar of links (previous · index · next) for the top and bottom of a page."""
    parts = [
        f'<a href="{html.escape(href)}">{label}</a>'
        for href, label in (
            (links.previous, "&larr; previous"),
            (links.index, "index of the study"),
            (links.next, "next &rarr;"),
        )
        if href
    ]
    return (
        '<nav class="aufacs-nav" style="margin:0.5em 2em;font-family:sans-serif">'
        + " &middot; ".join(parts)
        + "</nav>"
    )


def export_html(notebook: Path, title: str | None = None, links: PageLinks | None = None) -> Path:
    """Render an executed notebook to ``<notebook>.html`` beside it: images embedded, no
    script from the network, and widget views (which need a kernel) left out. ``title`` is the
    page's title (default: the file's name); ``links`` adds a navigation bar at the top and the
    bottom of the page."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    node = nbformat.read(notebook, as_version=4)
    node.metadata.pop("widgets", None)
    node.metadata["title"] = title or notebook.stem
    for cell in node.cells:
        for output in cell.get("outputs", []):
            output.get("data", {}).pop(WIDGET_VIEW, None)
    exporter = HTMLExporter(
        extra_loaders=[jinja2.DictLoader({"offline.html.j2": OFFLINE_TEMPLATE})],
        template_file="offline.html.j2",
        embed_images=True,
    )
    resources = {"navigation": navigation_html(links) if links else ""}
    body, _ = exporter.from_notebook_node(node, resources=resources)
    path = notebook.with_suffix(".html")
    path.write_text(body, encoding="utf-8")
    return path


def offline_problems(page: str) -> list[str]:
    """What in an HTML page needs the network or a kernel: scripts, styles, images or frames
    loaded from another host, and widget views; empty when the page is self-contained."""
    problems = [f"loads {m.group(0)!r}" for m in _EXTERNAL.finditer(page)]
    if WIDGET_VIEW in page:
        problems.append("holds a widget view, which needs a kernel or embedded widget state")
    if "@import url(" in page and "//" in page.split("@import url(", 1)[1][:12]:
        problems.append("imports a style sheet from another host")
    return problems
