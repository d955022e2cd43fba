"""Google's 345 Quick, Draw! class names, and matching user input to them.

A class name is only ever turned into a URL or a file name after
``resolve_class`` has matched it against the shipped list, so user input can
never reach a path or a URL unvalidated.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from urllib.parse import quote

from qdsketch.errors import UnknownClassError


@lru_cache(maxsize=1)
def categories() -> tuple[str, ...]:
    """All class names, spelled as Google spells them (``The Eiffel Tower``)."""
    text = resources.files("qdsketch").joinpath("categories.txt").read_text("utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@lru_cache(maxsize=1)
def _by_folded_name() -> dict[str, str]:
    return {name.casefold(): name for name in categories()}


def suggest(name: str, known: list[str] | tuple[str, ...], n: int = 3) -> list[str]:
    """The closest spellings of ``name`` among ``known``."""
    folded = {k.casefold(): k for k in known}
    close = difflib.get_close_matches(name.strip().casefold(), list(folded), n=n, cutoff=0.5)
    return [folded[c] for c in close]


def resolve_class(name: str, known: list[str] | tuple[str, ...] | None = None) -> str:
    """Return Google's spelling of ``name`` (case-insensitive), or raise.

    ``known`` restricts the match to a subset, such as a checkpoint's classes.
    """
    if known is None:
        table = _by_folded_name()
    else:
        table = {k.casefold(): k for k in known}
    key = " ".join(name.split()).casefold()
    if key in table:
        return table[key]
    pool = list(table.values())
    close = suggest(name, pool)
    guess = f"Did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    if known is None:
        hint = guess or "Run `qdsketch download --list-classes` for all 345 names"
        raise UnknownClassError(f"unknown class {name!r}", hint.strip())
    knows = f"It knows: {', '.join(sorted(pool))}" if len(pool) <= 12 else "`qdsketch sample --list-classes` lists them"
    raise UnknownClassError(f"class {name!r} is not one this model knows", f"{guess}{knows}")


def parse_class_list(names: str | Iterable[str]) -> list[str]:
    """Resolve each name (``"cat,hot air balloon"`` is split at commas), keeping order,
    no repeats; ``all`` alone means all 345 classes, in Google's order."""
    parts = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    if [p.lower() for p in parts] == ["all"]:
        return list(categories())
    resolved: list[str] = []
    for part in parts:
        name = resolve_class(part)
        if name not in resolved:
            resolved.append(name)
    if not resolved:
        raise UnknownClassError("no class names given", "pass --classes cat,clock")
    return resolved


def url_name(name: str) -> str:
    """The URL-encoded form of a validated class name (``hot%20air%20balloon``)."""
    return quote(resolve_class(name), safe="")
