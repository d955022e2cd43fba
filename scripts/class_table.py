"""The per-class table of a model card, from `qdsketch evaluate ... --judge --json`.

    qdsketch evaluate CHECKPOINT --data data-all/dataset --judge -n 20 --json > report.json
    python scripts/class_table.py report.json > docs/classes.md

One row a class, in the order of Google's list: real test drawings' top-1 and top-3 rates by
the judge beside the generated sketches', their ratio, and precision and recall against the
real drawings; the summary the issue's targets are stated in; the 20 classes drawn worst.
"""

import json
import sys


def fmt(value, digits=2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def main() -> None:
    report = json.loads(open(sys.argv[1]).read())
    judge = report["judge"]
    t = judge["temperatures"][0]
    overall, classes = judge["overall"], judge["classes"]
    ratios = [c[f"ratio@{t}"] for c in classes.values()]
    print(f"# Every class, by the judge: `{report['checkpoint']}`\n")
    print(
        f"{judge['n']} sketches a class (seed {judge['seed']}, temperature {t}, K = 1) against the real test "
        f"drawings of `{report['data']}`, judged by `{judge['judge_path']}`; made with `scripts/class_table.py` "
        "from `qdsketch evaluate --judge --json`.\n"
    )
    print(f"- classes: {len(classes)}")
    print(
        f"- the judge on real test drawings: top-1 {fmt(overall['accuracy'], 3)}, top-3 (class mean) "
        f"{fmt(overall['accuracy_top3'], 3)}"
    )
    print(
        f"- generated, class means: top-1 {fmt(overall[f'recognised@{t}'], 3)}, top-3 "
        f"{fmt(overall[f'recognised_top3@{t}'], 3)}, precision {fmt(overall[f'precision@{t}'], 3)}, recall "
        f"{fmt(overall[f'recall@{t}'], 3)}"
    )
    print(
        f"- median over classes of generated top-1 / real top-1: **{fmt(overall[f'median_ratio@{t}'], 3)}** "
        "(target 0.6)"
    )
    zero = overall[f"top3_zero@{t}"]
    print(
        f"- classes whose sketches are never in the judge's top 3: **{zero:.1%}** "
        f"({round(zero * len(classes))} of {len(classes)}; target at most 5%)"
    )
    above = sum(r is not None and r >= 0.6 for r in ratios)
    print(f"- classes at a ratio of 0.6 or more: {above} of {len(classes)}\n")
    print("## The 20 drawn worst\n")
    print(", ".join(overall[f"worst@{t}"]) + "\n")
    print("## Every class\n")
    print("| class | real top-1 | real top-3 | generated top-1 | generated top-3 | ratio | precision | recall |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, c in classes.items():
        print(
            f"| {name} | {fmt(c['accuracy'])} | {fmt(c['accuracy_top3'])} | {fmt(c[f'recognised@{t}'])} | "
            f"{fmt(c[f'recognised_top3@{t}'])} | {fmt(c[f'ratio@{t}'])} | {fmt(c[f'precision@{t}'])} | "
            f"{fmt(c[f'recall@{t}'])} |"
        )


if __name__ == "__main__":
    main()
