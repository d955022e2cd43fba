"""The models that ship with qdsketch, and which one draws each class.

``assets/models.json`` lists them in order of preference, each with its checkpoint,
the judge that knows its classes (for ``--best-of``), and its classes. A class is
drawn by the first model that knows it: a model trained on a few classes, which
draws them better, comes before one that knows them all (docs/model-card.md).
No torch here: ``--list-classes`` and shell completion read this at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from qdsketch.classes import categories, resolve_class
from qdsketch.errors import UnknownClassError
from qdsketch.paths import shipped

#: the list of shipped models; its files lie beside it (tests point it elsewhere)
MANIFEST = shipped("models.json")


@dataclass(frozen=True)
class ShippedModel:
    name: str  # how reports call it: "five", "all"
    path: Path  # its checkpoint
    judge_path: Path | None  # the judge of its classes, for --best-of (none: no judge ships for it)
    classes: tuple[str, ...]
    about: str  # one line, for the model card and --list-classes --json


def shipped_models() -> tuple[ShippedModel, ...]:
    """The models that ship, in order of preference."""
    return _read(MANIFEST)


@lru_cache(maxsize=4)
def _read(manifest: Path) -> tuple[ShippedModel, ...]:
    entries = json.loads(manifest.read_text("utf-8"))
    return tuple(
        ShippedModel(
            e["name"],
            manifest.parent / e["file"],
            manifest.parent / e["judge"] if e["judge"] else None,
            tuple(categories() if e["classes"] == "all" else e["classes"]),
            e["about"],
        )
        for e in entries
    )


def known_classes() -> list[str]:
    """Every class a shipped model draws, in Google's order."""
    known = {c for m in shipped_models() for c in m.classes}
    return [c for c in categories() if c in known]


def model_for(name: str) -> ShippedModel:
    """The shipped model that draws class ``name`` (any spelling ``resolve_class`` takes)."""
    name = resolve_class(name)  # one of Google's 345, or the error with a suggestion
    for model in shipped_models():
        if name in model.classes:
            return model
    known = known_classes()
    draws = f"they draw {', '.join(known)}" if len(known) <= 12 else "`qdsketch sample --list-classes` lists theirs"
    raise UnknownClassError(
        f"no model that ships with qdsketch draws {name!r}", f"{draws}; or pass the --checkpoint of one you trained"
    )


def judge_for(classes: list[str]) -> Path | None:
    """A shipped judge that knows every one of ``classes``, the smallest first; ``None`` if none does."""
    for model in sorted(shipped_models(), key=lambda m: len(m.classes)):
        if model.judge_path is not None and set(classes) <= set(model.classes):
            return model.judge_path
    return None


def judged_classes() -> set[str]:
    """Every class some shipped judge knows."""
    return {c for m in shipped_models() if m.judge_path is not None for c in m.classes}
