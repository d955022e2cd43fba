"""Ship a model of all 345 classes: its weights as the package's data/all.pt (no training
state), listed in data/models.json after the five-class model, which keeps its five classes.

    python scripts/ship_all.py RUN_OR_CHECKPOINT "one line on what it is"

The judge of its classes, data/judge-all.pt, comes from
`python scripts/ship_judge.py data-all/dataset judge-all.pt`.
"""

import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qdsketch.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from qdsketch.classes import categories  # noqa: E402
from qdsketch.paths import shipped  # noqa: E402


def main() -> None:
    source, about = Path(sys.argv[1]), sys.argv[2]
    ckpt = load_checkpoint(source)
    if sorted(ckpt.class_names) != sorted(categories()):
        sys.exit(f"{source} knows {len(ckpt.class_names)} classes, not Google's 345")
    # its data as `make data-all` names it (the same bytes), not the path on the machine it trained on;
    # validation losses only where they are these weights' (a best.pt: a snapshot's were its last epoch's)
    val = ckpt.val if source.name == "best.pt" or source.is_dir() else {}
    # where its weights started: a run carried on from the model that shipped before (`train
    # --init-from all`) says so, not "all", which from now on names these weights
    started = "the all.pt shipped before" if ckpt.train.init_from == "all" else ckpt.train.init_from
    train = replace(ckpt.train, data="data-all/dataset", init_from=started)
    save_checkpoint(shipped("all.pt"), replace(ckpt, state=None, train=train, val=val))
    manifest = shipped("models.json")
    entries = [e for e in json.loads(manifest.read_text()) if e["name"] != "all"]
    entries.append({"name": "all", "file": "all.pt", "judge": "judge-all.pt", "classes": "all", "about": about})
    manifest.write_text(json.dumps(entries, indent=2) + "\n")
    print(f"{shipped('all.pt')}: {ckpt.config.arch}, epoch {ckpt.epoch}, {ckpt.trained}")


if __name__ == "__main__":
    main()
