"""Turn one HTML, Markdown, reST or plain-text file into a title and a list of sections.

Design decisions:
- Each format is read by the library made for it (BeautifulSoup with lxml for HTML,
  markdown-it-py for Markdown, docutils for reST); what is written here is only the walk
  that turns their trees into sections, because no library knows what a "section with a
  citable anchor" is.
- A section is a heading (or, in Sphinx HTML, an API entry such as `json.dumps`, whose
  anchor is the object's id) with the text up to the next one. API entries get their own
  sections so that citations and generated questions can point at one function, and the
  text after an API list goes back to the heading it belongs to.
- Text keeps block structure (blank lines between paragraphs, code blocks verbatim) so a
  model trained on it sees documentation-shaped text, not one long line.
- Sections with no text are dropped; a document's text is every kept section's title line
  followed by its text, so every section text (and every answer taken from one) is a
  substring of the document text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from chatforge.corpus_files import Section

SUFFIXES = {
    ".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".rst": "rst", ".txt": "txt"
}  # fmt: skip


@dataclass
class ParsedPage:
    title: str
    sections: list[Section] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(f"{s.title}\n{s.text}" if s.title else s.text for s in self.sections)


def _squash(text: str) -> str:
    return " ".join(text.replace("\xa0", " ").split())


def _tidy_block(text: str) -> str:
    """Strip trailing spaces and runs of blank lines inside a verbatim block."""
    lines = [line.rstrip() for line in text.replace("\xa0", " ").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


class _SectionBuilder:
    """Collects blocks of text into the section currently open (the top of a stack)."""

    def __init__(self, title: str, level: int = 1) -> None:
        self.done: list[Section] = []
        self.stack: list[tuple[Section, list[str]]] = []
        self.inline: list[str] = []
        self.open(title, "", level)

    def open(self, title: str, anchor: str, level: int) -> None:
        self.flush()
        section = Section(title, anchor, level, "")
        self.done.append(section)
        self.stack.append((section, []))

    def close_to(self, depth: int) -> None:
        """Close sections until `depth` remain open."""
        self.flush()
        while len(self.stack) > depth:
            section, blocks = self.stack.pop()
            section.text = "\n\n".join(blocks)

    def add_inline(self, text: str) -> None:
        self.inline.append(text)

    def add_block(self, text: str) -> None:
        self.flush()
        if text.strip():
            self.stack[-1][1].append(text)

    def flush(self) -> None:
        text = _squash("".join(self.inline))
        self.inline = []
        if text and self.stack:
            self.stack[-1][1].append(text)

    def finish(self, title: str) -> ParsedPage:
        self.close_to(0)
        sections = [s for s in self.done if s.text.strip()]
        return ParsedPage(title=title, sections=sections)


# --- HTML -------------------------------------------------------------------------------

_DROP_TAGS = {"script", "style", "nav", "noscript", "form", "button", "svg", "footer", "head"}
_DROP_CLASSES = {"headerlink", "sphinxsidebar", "related", "footer"}
_BLOCK_TAGS = {
    "p", "div", "section", "article", "ul", "ol", "li", "dl", "dd", "dt", "table", "tr",
    "blockquote", "figure", "figcaption", "caption", "hr", "br", "main", "aside", "header",
}  # fmt: skip
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_PY_NAME = re.compile(r"[A-Za-z_][\w.]*")


def parse_html(source: str, fallback_title: str) -> ParsedPage:
    from bs4 import BeautifulSoup, Comment, Doctype, NavigableString, Tag

    soup = BeautifulSoup(source, "lxml")
    root = (
        soup.find(attrs={"role": "main"})
        or soup.find("main")
        or soup.find("article")
        or soup.body
        or soup
    )
    h1 = root.find("h1")
    for tag in root.find_all(class_=lambda c: c in _DROP_CLASSES):
        tag.decompose()
    if h1 is not None:
        title = _squash(h1.get_text())
    elif soup.title and soup.title.string:
        title = _squash(soup.title.string)
    else:
        title = fallback_title
    builder = _SectionBuilder(title)
    heading_depth = 1  # sections open under headings (the document's own counts as one)
    dl_depth = 0

    def visit(node) -> None:
        nonlocal heading_depth, dl_depth
        if isinstance(node, Comment | Doctype):
            return
        if isinstance(node, NavigableString):
            builder.add_inline(str(node))
            return
        if not isinstance(node, Tag) or node.name in _DROP_TAGS:
            return
        name = node.name
        if name in _HEADINGS:
            level = _HEADINGS[name]
            parent = node.parent
            in_section = parent is not None and parent.name in ("section", "div")
            anchor = node.get("id") or (parent.get("id", "") if in_section else "")
            builder.close_to(0)
            builder.open(_squash(node.get_text()), anchor, level)
            heading_depth = 1
            return
        if name == "dt" and node.get("id") and "sig" in (node.get("class") or []):
            builder.close_to(heading_depth + dl_depth - 1)
            base = builder.stack[heading_depth - 1][0].level if builder.stack else 1
            signature = _squash(node.get_text())
            name = node["id"]
            if name.startswith("c."):  # C API ids: c.PyList_New
                name = name[2:]
            elif not _PY_NAME.fullmatch(name):  # e.g. cmdoption-json.tool-sort-keys
                name_tag = node.find(class_="sig-name")
                name = _squash(name_tag.get_text()) if name_tag else signature
            builder.open(name, node["id"], base + dl_depth)
            builder.add_block(signature)
            return
        if name == "pre":
            builder.add_block(_tidy_block(node.get_text()))
            return
        if name == "dl":
            dl_depth += 1
            builder.flush()
            for child in node.children:
                visit(child)
            builder.close_to(min(len(builder.stack), heading_depth + dl_depth - 1))
            dl_depth -= 1
            return
        is_block = name in _BLOCK_TAGS
        if is_block:
            builder.flush()
        for child in node.children:
            visit(child)
        if is_block:
            builder.flush()
        elif name in ("td", "th"):
            builder.add_inline(" ")

    for child in root.children:
        visit(child)
    return builder.finish(title)


# --- Markdown ---------------------------------------------------------------------------


def slugify(text: str) -> str:
    """GitHub-style heading anchors: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", text.lower()).strip()
    return re.sub(r"\s", "-", text)


def _inline_text(token) -> str:
    parts = []
    for child in token.children or []:
        if child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "html_inline":
            continue
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts)


def _lines(text: str) -> str:
    return "\n".join(_squash(line) for line in text.splitlines() if line.strip())


def parse_markdown(source: str, fallback_title: str) -> ParsedPage:
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(source)
    title = next(
        (
            _squash(_inline_text(tokens[i + 1]))
            for i, t in enumerate(tokens)
            if t.type == "heading_open" and t.tag == "h1"
        ),
        fallback_title,
    )
    builder = _SectionBuilder(title)
    seen: dict[str, int] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "heading_open":
            heading = _squash(_inline_text(tokens[i + 1]))
            slug = slugify(heading)
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            builder.close_to(0)
            builder.open(heading, slug if not count else f"{slug}-{count}", int(token.tag[1]))
            i += 3
            continue
        if token.type == "inline":
            builder.add_block(_lines(_inline_text(token)))
        elif token.type in ("fence", "code_block"):
            builder.add_block(_tidy_block(token.content))
        elif token.type == "html_block":
            from bs4 import BeautifulSoup

            builder.add_block(_lines(BeautifulSoup(token.content, "lxml").get_text("\n")))
        i += 1
    return builder.finish(title)


# --- reStructuredText -------------------------------------------------------------------


def parse_rst(source: str, fallback_title: str) -> ParsedPage:
    from docutils import nodes
    from docutils.core import publish_doctree

    settings = {
        "report_level": 5,
        "halt_level": 5,
        "file_insertion_enabled": False,
        "raw_enabled": False,
        "warning_stream": False,
    }
    tree = publish_doctree(source, settings_overrides=settings)
    title = _squash(tree["title"]) if tree.get("title") else fallback_title
    builder = _SectionBuilder(title)

    def body(node, level: int) -> None:
        for child in node.children:
            if isinstance(child, nodes.section):
                heading = _squash(child[0].astext()) if len(child) else ""
                anchor = child["ids"][0] if child["ids"] else slugify(heading)
                builder.close_to(0)
                builder.open(heading, anchor, level + 1)
                body(child, level + 1)
            elif isinstance(child, nodes.title | nodes.system_message | nodes.comment):
                continue
            elif isinstance(child, nodes.literal_block | nodes.doctest_block):
                builder.add_block(_tidy_block(child.astext()))
            elif isinstance(child, nodes.bullet_list | nodes.enumerated_list):
                for item in child.children:
                    builder.add_block(_lines(item.astext()))
            else:
                builder.add_block(_lines(child.astext()))

    body(tree, 1)
    return builder.finish(title)


# --- plain text -------------------------------------------------------------------------


def parse_text(source: str, fallback_title: str) -> ParsedPage:
    text = _tidy_block(source)
    first, _, rest = text.partition("\n")
    if first.strip() and len(first) <= 100 and rest.strip():
        title, body = _squash(first), rest.strip("\n")
    else:
        title, body = fallback_title, text
    sections = [Section(title, "", 1, body)] if body.strip() else []
    return ParsedPage(title=title, sections=sections)


PARSERS = {"html": parse_html, "md": parse_markdown, "rst": parse_rst, "txt": parse_text}


def parse_file(path: Path, text: str) -> ParsedPage:
    """Parse `text`, the contents of `path`, by the format its suffix names."""
    return PARSERS[SUFFIXES[path.suffix.lower()]](text, path.stem.replace("_", " "))
