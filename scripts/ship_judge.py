"""Copy the judge of the five-class real dataset into the package, for --best-of.

    python scripts/ship_judge.py [DATASET]   # default: data-shared/dataset.npz (`make data`)

Trains the judge first if `qdsketch evaluate --judge` has not cached it beside the dataset.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qdsketch import judge as J  # noqa: E402
from qdsketch.data import load_dataset  # noqa: E402


def main() -> None:
    data = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "data-shared" / "dataset.npz")
    ds = load_dataset(data)
    cfg = J.JudgeConfig()
    net, _ = J.load_or_train(ds, data.with_name(data.stem + ".judge.pt"), cfg)
    out = J.bundled_judge()
    J.save_judge(out, net, ds, cfg)
    print(f"{out}: judge of {', '.join(ds.class_names)}, {out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
