"""GitHub Markdown that stays intact whatever names the user's datasets, classes and estimators have."""

import re

MARK = "⚠"  # after a score whose training looked unfinished (see the report's Training diagnostics)
_SPECIAL = re.compile(r"([\\`*_\[\]|~#!$])")


def escape_markdown(text):
    """Text safe inside a GitHub Markdown table cell, heading or list item.

    One line (newlines and tabs become spaces), HTML shown as text (`<`, `>`, `&` as entities),
    and every character GitHub reads as markup - emphasis, code, links, tables, strike-through,
    headings, images, math - backslash-escaped.
    """
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def link_path(path):
    """A relative path usable as a Markdown link target (spaces and parentheses encoded)."""
    from urllib.parse import quote

    return quote(str(path).replace("\\", "/"), safe="/-_.~")


def table(rows, headers):
    """A GitHub table; cells are used as given (escape names before)."""
    from tabulate import tabulate

    return tabulate(rows, headers, tablefmt="github", disable_numparse=True)
