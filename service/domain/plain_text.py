"""Release text for an email's text/plain part: Markdown read into its syntax tree by
markdown-it-py (the parser of the HTML part, content.py) and written out as a person would
type it in a plain-text email.

- emphasis, strong, strikethrough and code spans: their text, without the marks;
- links: `text (https://...)`, the URL once when the text is the URL (autolinks too);
  images: `alt text (https://...)`; a link whose scheme the HTML part drops: its text only;
- headings: underlined, `=` for level 1 and `-` below;
- lists: `- item` and `1. item`, continuation lines indented under the item's text;
- block quotes: `> ` before each line; code blocks: indented four spaces, never wrapped;
- hard breaks kept; raw HTML reduced to its text;
- paragraphs wrapped at WIDTH columns, never inside a word: a URL is never broken.

Rules: CommonMark 0.31 (markdown-it-py's "commonmark" preset, plus GFM tables and
strikethrough as in content.py); RFC 2046 §4.1 (text/plain); RFC 5322 §2.1.1 (lines of at
most 78 characters are recommended).
"""

from __future__ import annotations

import html
import textwrap
from urllib.parse import urlsplit

import nh3
from markdown_it.tree import SyntaxTreeNode

from service.domain.content import ALLOWED_URL_SCHEMES, markdown_parser

WIDTH = 72  # columns of text; quoted-printable soft breaks (RFC 2045 §6.7) come on top
CODE_INDENT = "    "
MIN_WIDTH = 20  # deep nesting still leaves this many columns for the text itself

# Raw HTML is read as HTML here, so that it can be reduced to its text.
_parser = markdown_parser(html=True)


def markdown_to_text(markdown: str, *, width: int = WIDTH) -> str:
    """The plain-text form of a Markdown `markdown` (a release's body): lines of at most
    `width` columns but for words longer than that (URLs), no trailing line break; "" for
    an empty text."""
    tree = SyntaxTreeNode(_parser.parse(markdown))
    return _join_blocks(tree.children, width)


def wrap_text(text: str, *, width: int = WIDTH) -> str:
    """Plain text (a summary) wrapped at `width` columns, its own line breaks kept; never
    inside a word. Returns the text without a trailing line break."""
    return "\n".join(_wrap(line, width) for line in text.strip().splitlines())


def underline(text: str, mark: str, *, width: int = WIDTH) -> str:
    """A heading: `text` wrapped, and a line of `mark` as long as its longest line."""
    lines = _wrap(" ".join(text.split()), width).split("\n")
    return "\n".join([*lines, mark * max(len(line) for line in lines)])


def _wrap(line: str, width: int) -> str:
    if not line.strip():
        return ""
    return textwrap.fill(
        line,
        width=max(width, MIN_WIDTH),
        break_long_words=False,
        break_on_hyphens=False,
    )


def _join_blocks(nodes: list[SyntaxTreeNode], width: int, *, tight: bool = False) -> str:
    blocks = [block for node in nodes if (block := _block(node, width))]
    return ("\n" if tight else "\n\n").join(blocks)


def _block(node: SyntaxTreeNode, width: int) -> str:
    kind = node.type
    if kind == "paragraph":
        return "\n".join(_wrap(line, width) for line in _inline_of(node).split("\n")).strip("\n")
    if kind == "heading":
        return underline(_inline_of(node), "=" if node.tag == "h1" else "-", width=width)
    if kind == "blockquote":
        inner = _join_blocks(node.children, width - 2)
        return "\n".join(f"> {line}" if line else ">" for line in inner.split("\n"))
    if kind in ("bullet_list", "ordered_list"):
        return _list(node, width)
    if kind in ("code_block", "fence"):
        return "\n".join(
            f"{CODE_INDENT}{line}" if line.strip() else ""
            for line in node.content.rstrip("\n").split("\n")
        )
    if kind == "hr":
        return "* * *"
    if kind == "html_block":
        return "\n\n".join(
            _wrap(" ".join(paragraph.split()), width)
            for paragraph in _html_text(node.content).split("\n\n")
            if paragraph.strip()
        )
    if kind == "table":
        return _table(node)
    return _join_blocks(node.children, width)  # any other container: its blocks


def _list(node: SyntaxTreeNode, width: int) -> str:
    number = int(str(node.attrs.get("start", 1)))
    tight = all(
        child.hidden for item in node.children for child in item.children
        if child.type == "paragraph"
    )  # fmt: skip
    items = []
    for item in node.children:
        marker = f"{number}." if node.type == "ordered_list" else "-"
        number += 1
        indent = " " * (len(marker) + 1)
        inner = _join_blocks(item.children, width - len(indent), tight=tight)
        lines = inner.split("\n") if inner else [""]
        items.append(
            "\n".join(
                [f"{marker} {lines[0]}".rstrip()]
                + [f"{indent}{line}" if line else "" for line in lines[1:]]
            )
        )
    return ("\n" if tight else "\n\n").join(items)


def _table(node: SyntaxTreeNode) -> str:
    rows: list[str] = []
    for section in node.children:  # thead, tbody
        for row in section.children:
            rows.append(" | ".join(_inline_of(cell).replace("\n", " ") for cell in row.children))
            if section.type == "thead":
                rows.append("-" * len(rows[-1]))
    return "\n".join(rows)


def _inline_of(node: SyntaxTreeNode) -> str:
    """The text of a block's inline content; hard breaks as line breaks."""
    return "".join(_inline(child) for child in node.children).strip(" ")


def _inline(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind in ("text", "code_inline"):
        return node.content
    if kind == "softbreak":
        return " "
    if kind == "hardbreak":
        return "\n"
    if kind == "html_inline":
        return "\n" if node.content.lower().replace(" ", "") in ("<br>", "<br/>") else ""
    if kind == "link":
        return _link(_inline_of(node), str(node.attrs.get("href", "")))
    if kind == "image":
        return _link(_inline_of(node), str(node.attrs.get("src", "")))
    return "".join(_inline(child) for child in node.children)  # em, strong, s, inline


def _link(text: str, url: str) -> str:
    """`text (url)`; the text alone when it is the URL, or when the URL is one the HTML part
    drops (content.ALLOWED_URL_SCHEMES); a mailto: URL as its address."""
    scheme = urlsplit(url).scheme.lower()
    if not url or (scheme and scheme not in ALLOWED_URL_SCHEMES):
        return text
    shown = url.removeprefix("mailto:") if scheme == "mailto" else url
    if not text:
        return shown
    if _same_place(text, url):
        return text  # as written: `<https://fjøs.no/å>` is not shown percent-encoded
    return f"{text} ({shown})"


def _same_place(text: str, url: str) -> bool:
    """Whether a link's text names its own URL (`<https://x>`, `[https://x](https://x)`,
    `[x@y.no](mailto:x@y.no)`), also when the parser percent-encoded it or wrote its host
    in punycode."""
    written = {url, _parser.normalizeLinkText(url)}
    bare = {u.split(":", 1)[1].lstrip("/") for u in written if ":" in u}
    return text in written | bare or text.rstrip("/") in {u.rstrip("/") for u in written}


def _html_text(markup: str) -> str:
    """The text of raw HTML: every tag dropped (with the content of script and style)."""
    return html.unescape(nh3.clean(markup, tags=set(), attributes={}))
