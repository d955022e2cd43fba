"""The shipped models: which one draws each class, and what `sample` says of it."""

import json
import shutil

import pytest
import torch
from helpers import checkpoint_of

from qdsketch import shipped
from qdsketch.checkpoint import load_checkpoint, save_checkpoint
from qdsketch.classes import categories
from qdsketch.completion import model_class
from qdsketch.config import preset
from qdsketch.model import SketchModel


def untimed(path):
    """An ndjson file's drawings, without the timestamp (the second it was written)."""
    return [{k: v for k, v in json.loads(line).items() if k != "timestamp"} for line in path.open()]


@pytest.fixture
def two_models(tmp_path, monkeypatch):
    """A manifest of two models: the shipped five-class one, then one of two classes, one of
    them the five-class model's cat (so the order of preference decides who draws cats)."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    for name in ("default.pt", "judge.pt"):
        shutil.copy(shipped.MANIFEST.parent / name, folder / name)
    torch.manual_seed(0)
    model = SketchModel(preset("tiny", n_classes=2))
    names = ["cat", "The Eiffel Tower"]
    save_checkpoint(
        folder / "more.pt",
        checkpoint_of(model, names, max_seq_len=40),
    )
    entries = [
        {
            "name": "five",
            "file": "default.pt",
            "judge": "judge.pt",
            "classes": ["cat", "clock", "tent", "house", "nail"],
            "about": "five classes",
        },
        {"name": "more", "file": "more.pt", "judge": None, "classes": names, "about": "two classes"},
    ]
    (folder / "models.json").write_text(json.dumps(entries))
    monkeypatch.setattr(shipped, "MANIFEST", folder / "models.json")
    return folder


def test_the_manifest_that_ships_names_files_that_ship():
    """The five-class model first (it draws its five best), then the model of all 345."""
    models = shipped.shipped_models()
    assert [m.name for m in models] == ["five", "all"]
    for m in models:
        assert m.path.is_file() and m.judge_path is not None and m.judge_path.is_file()
    assert shipped.known_classes() == list(categories())
    assert {shipped.model_for(c).name for c in ("cat", "clock", "tent", "house", "nail")} == {"five"}
    assert shipped.model_for("bicycle").name == shipped.model_for("The Eiffel Tower").name == "all"
    assert load_checkpoint(models[1].path).class_names == list(categories())


def test_list_classes(run):
    result = run("sample", "--list-classes")
    assert result.exit_code == 0
    assert result.output.splitlines() == shipped.known_classes()
    as_json = json.loads(run("sample", "--list-classes", "--json").output)
    assert as_json["classes"]["cat"] == "five"


def test_each_class_is_drawn_by_the_first_model_that_knows_it(run, two_models, tmp_path):
    assert shipped.model_for("CAT").name == "five" and shipped.model_for("the eiffel tower").name == "more"
    assert run("sample", "--list-classes").output.splitlines() == [
        "cat",
        "clock",
        "house",
        "nail",
        "tent",
        "The Eiffel Tower",
    ]  # Google's order: capitals first in the file, "The Eiffel Tower" among the t's
    both = run("sample", "cat", "the eiffel tower", "-n", 2, "--seed", 3, "-o", tmp_path / "both.ndjson")
    assert both.exit_code == 0, both.output
    assert both.output.endswith(", by the shipped models five (cat), more (The Eiffel Tower)\n")
    alone = run("sample", "cat", "-n", 2, "--seed", 3, "-o", tmp_path / "cat.ndjson")
    assert alone.output.endswith(", by the shipped model five\n")
    # sketch i of a call has the seed (seed, i), whichever model draws it: the cats are the same
    assert untimed(tmp_path / "both.ndjson")[:2] == untimed(tmp_path / "cat.ndjson")
    assert [d["word"] for d in untimed(tmp_path / "both.ndjson")] == 2 * ["cat"] + 2 * ["The Eiffel Tower"]
    data = json.loads(run("sample", "cat", "The Eiffel Tower", "-n", 1, "-o", tmp_path / "j.svg", "--json").output)
    assert data["models"] == {"cat": "five", "The Eiffel Tower": "more"}


def test_a_class_no_shipped_model_draws_and_a_judge_no_one_ships(run, two_models, tmp_path):
    result = run("sample", "dog", "-o", tmp_path / "x.png")
    assert result.exit_code == 1
    assert result.output == (
        "Error: no model that ships with qdsketch draws 'dog'. They draw cat, clock, house, nail, tent, "
        "The Eiffel Tower; or pass the --checkpoint of one you trained\n"
    )
    result = run("sample", "The Eiffel Tower", "--best-of", 2, "-o", tmp_path / "x.png")
    assert result.exit_code == 1
    assert result.output == "Error: no judge knows The Eiffel Tower. Use --best-of 1 with these classes\n"
    assert not (tmp_path / "x.png").exists()


def test_classes_all_draws_every_class_the_models_draw(run, two_models, tmp_path):
    result = run("sample", "--classes", "all", "-n", 1, "--seed", 0, "-o", tmp_path / "all.ndjson")
    assert result.exit_code == 0, result.output
    assert [d["word"] for d in untimed(tmp_path / "all.ndjson")] == shipped.known_classes()
    assert "(6 classes" not in result.output and "cat, clock, house, nail, tent, The Eiffel Tower" in result.output


def test_completion_offers_the_classes_the_shipped_models_draw(two_models):
    class Ctx:
        params = {"checkpoint": None}

    assert [c.value for c in model_class(Ctx, None, "t")] == ["tent", "The Eiffel Tower"]


def test_the_shipped_weights_stay_small():
    files = {m.path for m in shipped.shipped_models()} | {m.judge_path for m in shipped.shipped_models()}
    assert sum(f.stat().st_size for f in files if f is not None) <= 30 * 2**20


def test_any_of_the_345_classes_is_drawn_and_the_report_says_by_which_model(run, tmp_path):
    result = run("sample", "bicycle", "house", "-n", 2, "--seed", 0, "-o", tmp_path / "b.ndjson", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["models"] == {"bicycle": "all", "house": "five"}
    drawn = [json.loads(line) for line in (tmp_path / "b.ndjson").read_text().splitlines()]
    assert [d["word"] for d in drawn] == ["bicycle", "bicycle", "house", "house"] and all(d["drawing"] for d in drawn)
    said = run("animate", "The Eiffel Tower", "--seed", 1, "--size", 64, "-o", tmp_path / "t.gif")
    assert said.exit_code == 0 and said.output.rstrip().endswith("by the shipped model all"), said.output
    best = run("sample", "bicycle", "-n", 1, "--seed", 0, "--best-of", 2, "-o", tmp_path / "k.png")
    assert best.exit_code == 0, best.output  # the judge of all 345 ships with it
