"""Copy the judge of a dataset into the package, for --best-of (and the shipped model's figures).

    python scripts/ship_judge.py [DATASET] [NAME]
    # default: data-shared/dataset.npz (`make data`) -> judge.pt
    python scripts/ship_judge.py data-all/dataset judge-all.pt   # all 345 classes (`make data-all`)

Trains the judge first if `qdsketch evaluate --judge` has not cached it beside the dataset.
"""

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qdsketch import judge as J  # noqa: E402
from qdsketch.data.preprocess import load_dataset  # noqa: E402
from qdsketch.paths import shipped  # noqa: E402


def main() -> None:
    data = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "data-shared" / "dataset.npz")
    out = shipped(sys.argv[2] if len(sys.argv) > 2 else "judge.pt")
    ds = load_dataset(data)
    cfg = J.JudgeConfig()
    t = time.perf_counter()
    net, trained, _ = J.load_or_train(ds, data.with_name(data.stem + ".judge.pt"), cfg)
    took = f"trained in {time.perf_counter() - t:.0f} s" if trained else "cached"
    J.save_judge(out, net, ds, cfg)
    print(f"{out}: judge of {len(ds.class_names)} classes ({took}), {out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
