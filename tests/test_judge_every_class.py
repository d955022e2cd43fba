"""A judge of all 344 classes of Google's first 25 drawings: no class is left over to learn
"none of these" from. Its own file, so that `make test` trains it beside test_judge.py's judge,
on the other core."""

import pytest
from helpers import SHARED, degenerate, needs_shared

from qdsketch import judge as J
from qdsketch.data.preprocess import build_dataset


@pytest.mark.slow
@needs_shared
def test_a_judge_of_every_class_has_no_none_and_real_drawings_score_as_real(tmp_path):
    """344 classes (Google's first 25 of each): no other class is left to learn "none of
    these" from. The instrument, checked both ways: the real test drawings themselves,
    passed as sketches, score exactly what real drawings score (ratio 1); one straight
    line for every class scores nothing."""
    ds = build_dataset(SHARED, [c.stem for c in sorted((SHARED / "simplified").glob("*.ndjson"))])
    assert len(ds.class_names) == 344
    assert J.other_drawings(ds.class_names) == ([], [])
    cfg = J.JudgeConfig(epochs=3)
    net = J.train_judge(ds, cfg)
    test = ds.splits["test"]
    rows = J.split_rows(ds, "test")
    real = {label: [r for r, y in zip(rows, test.labels) if y == label] for label in range(344)}
    line = degenerate()["line"]
    result = J.judge_generator(net, ds, {1.0: real, 0.5: {label: [line] * 4 for label in range(344)}}, cfg=cfg)
    o = result["overall"]
    assert o["held_out_drawings"] == 0 and o["false_positive"] is None
    assert 0.01 < o["accuracy"] < o["accuracy_top3"]  # 17 drawings a class, 3 epochs: weak, but 10x chance (1/344)
    for c in result["classes"].values():
        assert c["recognised@1.0"] == c["accuracy"] and c["recognised_top3@1.0"] == c["accuracy_top3"]
        assert c["none@1.0"] == 0
    assert o["median_ratio@1.0"] == 1.0
    assert o["median_ratio@0.5"] == 0.0 and o["top3_zero@0.5"] >= 340 / 344
    assert len(o["worst@1.0"]) == 20 and len(o["worst@0.5"]) == 20
    ratios = [result["classes"][n]["ratio@0.5"] for n in o["worst@0.5"]]
    assert ratios == sorted(ratios)
    ranked = [(result["classes"][n]["ratio@1.0"], result["classes"][n]["recognised_top3@1.0"]) for n in o["worst@1.0"]]
    assert ranked == sorted(ranked)  # equal ratios: the lowest top-3 rate first
    # evaluate's tables: the 20 drawn worst; with -v, every class
    from rich.console import Console

    from qdsketch.reporting import judge_tables

    others = [n for n in result["classes"] if n not in o["worst@1.0"] + o["worst@0.5"]]
    for every, tables in ((False, 0), (True, 3)):  # the judge's own table, and one per temperature
        console = Console(record=True, width=300)
        judge_tables(console, {**result, "n": 4, "seed": 0}, every)  # as evaluate reports it
        rows = [line.split("│")[1].strip() for line in console.export_text().splitlines() if line.startswith("│")]
        assert all(rows.count(name) == tables for name in others), every
