"""Writes each node's English docs page in both forms ComfyUI's frontends read.

The docs panel asks for ``/extensions/<pack>/docs/<Node>/<locale>.md`` first
and falls back to ``docs/<Node>.md``: frontends 1.27, 1.49 and 1.58 ask for
``<Node>/en.md`` in English too, and the browser's console shows a 404 where
only ``<Node>.md`` exists, while ``<Node>.md`` is the form the frontends
before locale folders read (and the one ComfyUI's docs name for English).
So every node has both, with the same text:
``web/docs/<Node>/en.md`` is the page (edit that one, beside ``zh.md`` and
``ja.md``), and ``web/docs/<Node>.md`` is a copy this script writes.  Not a
symbolic link: a clone on Windows, or a zip of the pack, turns it into a file
holding the link's target.  ``tests/test_node_docs.py`` fails while a copy
differs from its page.

The nodes are those in ``locales/en/nodeDefs.json`` and any with a page in
``web/docs/``.  A node whose page exists only as ``<Node>.md`` (the older
single-file form) gets it copied to ``<Node>/en.md``, which then is its page.

Run: python tools/make_doc_pages.py           (writes the copies)
     python tools/make_doc_pages.py --check   (says which differ; exit 1 if any)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "web" / "docs"
NODE_DEFS = REPO / "locales" / "en" / "nodeDefs.json"


def nodes() -> list[str]:
    """Every node with a locale entry or a page, in the locale's order first."""
    named = list(json.loads(NODE_DEFS.read_text(encoding="utf-8")))
    pages = {p.stem for p in DOCS.glob("*.md")} | {p.parent.name for p in DOCS.glob("*/en.md")}
    return named + sorted(pages - set(named))


def page(node: str) -> Path:
    """The English page (the source)."""
    return DOCS / node / "en.md"


def copy(node: str) -> Path:
    """The single-file form, a copy of the page."""
    return DOCS / f"{node}.md"


def stale() -> list[str]:
    """The nodes whose page is missing, or whose copy is missing or differs."""
    return [node for node in nodes()
            if not page(node).is_file() or not copy(node).is_file()
            or copy(node).read_bytes() != page(node).read_bytes()]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        differ = stale()
        for node in differ:
            print(f"web/docs/{node}.md is not a copy of web/docs/{node}/en.md")
        return 1 if differ else 0
    for node in nodes():
        if not page(node).is_file():
            if not copy(node).is_file():
                print(f"{node}: no page (web/docs/{node}/en.md) to copy", file=sys.stderr)
                continue
            page(node).parent.mkdir(exist_ok=True)
            page(node).write_bytes(copy(node).read_bytes())
            print(f"wrote web/docs/{node}/en.md from web/docs/{node}.md (edit en.md from now on)")
        if not copy(node).is_file() or copy(node).read_bytes() != page(node).read_bytes():
            copy(node).write_bytes(page(node).read_bytes())
            print(f"wrote web/docs/{node}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
