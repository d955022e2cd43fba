"""Shell completion of class names (Click's own completion, docs/cli.md).

A TAB must answer at once, so nothing here imports torch: the classes of a
checkpoint are read straight from its pickle, with every object in it but
plain containers replaced by a stub that runs no code.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

from click.shell_completion import CompletionItem

#: the largest pickle of a checkpoint a TAB reads (the weights are stored beside it, not in it)
MAX_PICKLE = 1 << 20


class _Stub:
    """Stands in for every class a checkpoint's pickle names (tensors, storages)."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


class _Peek(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        return _Stub  # never a real class: no code from the file runs

    def persistent_load(self, pid):
        return None  # tensor storages: not read


def checkpoint_classes(path: Path | None) -> list[str]:
    """The class names in the checkpoint at ``path`` (a run directory means its
    best.pt; ``None`` the shipped model), or ``[]`` if it cannot be read."""
    from qdsketch.paths import checkpoint_file

    try:
        file = checkpoint_file(path)
        if not file.is_file():  # a FIFO, /dev/zero, a folder: opening or reading it would never end
            return []
        with zipfile.ZipFile(file) as z:
            info = next(i for i in z.infolist() if i.filename.endswith("data.pkl"))
            if info.file_size > MAX_PICKLE:  # the names are in a few kilobytes; a huge one is not a checkpoint
                return []
            with z.open(info) as handle:
                payload = _Peek(io.BytesIO(handle.read(MAX_PICKLE + 1))).load()
        names = payload["class_names"]
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
    except Exception:  # a TAB never fails loudly: no suggestions instead
        return []


def _matching(names, incomplete: str, before: str = "") -> list[CompletionItem]:
    folded = incomplete.casefold()
    return [CompletionItem(before + n) for n in names if n.casefold().startswith(folded)]


def _last_of_list(names, incomplete: str) -> list[CompletionItem]:
    """``a,b,c``: the names that complete ``c``, each after ``a,b,``."""
    before, comma, last = incomplete.rpartition(",")
    return _matching(names, last, before + comma)


def google_class_list(ctx, param, incomplete: str) -> list[CompletionItem]:
    """``--classes a,b``: the last name of the list, from Google's 345 (and ``all``)."""
    from qdsketch.classes import categories

    first = "," not in incomplete  # `all` stands alone
    return _last_of_list((["all"] if first else []) + list(categories()), incomplete)


def _model_classes(ctx) -> list[str]:
    """The classes of the model on the command line (``--checkpoint``), else the shipped models'."""
    checkpoint = ctx.params.get("checkpoint")
    if checkpoint is None:
        from qdsketch.shipped import known_classes

        return known_classes()
    return checkpoint_classes(checkpoint)


def model_class(ctx, param, incomplete: str) -> list[CompletionItem]:
    """A class of the model on the command line (``--checkpoint``), else of the shipped ones."""
    return _matching(_model_classes(ctx), incomplete)


def model_class_list(ctx, param, incomplete: str) -> list[CompletionItem]:
    """``--classes a,b`` for sample and animate: the last name, from the model's classes."""
    return _last_of_list(_model_classes(ctx), incomplete)
