"""Release text: Markdown rendered to HTML, then sanitized, for the web and for email alike."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt


def markdown_parser(*, html: bool = False) -> MarkdownIt:
    """The one Markdown dialect of release text: CommonMark with GFM tables and
    strikethrough. `html`: raw HTML read as HTML (for plain_text, which reduces it to its
    text); the HTML part reads it as text."""
    parser = MarkdownIt("commonmark", {"html": html, "linkify": False, "typographer": False})
    return parser.enable(["table", "strikethrough"])


_markdown = markdown_parser()

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "hr", "i",
    "img", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td",
    "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "th": {"align"},
    "td": {"align"},
}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


def render_markdown(text: str) -> str:
    """Safe HTML from Markdown: raw HTML is not interpreted, and nh3 removes anything risky
    that Markdown itself can produce (javascript: links, event handlers)."""
    return nh3.clean(
        _markdown.render(text),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer",
    )
