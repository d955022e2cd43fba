"""Shared fixtures: real drawings, datasets made from them, the CLI in-process, a real
HTTP mirror on 127.0.0.1, and no test ever touching a developer's own QDSKETCH_HOME."""

from __future__ import annotations

import os
import shutil

# one thread a process, read by torch as it loads, here and in every process a test starts: the
# suite runs on as many workers as cores, and a second thread on a busy core only spins
os.environ["OMP_NUM_THREADS"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402
from helpers import DATA, FIVE, Mirror  # noqa: E402

from qdsketch.paths import HOME_ENV  # noqa: E402

torch.set_num_threads(1)  # as it says, should torch have been loaded before


#: the files whose module fixtures take longest (a judge trained, 96 cases run): first, so
#: that in parallel (`make test` runs pytest-xdist by file) each starts at once on a worker of
#: its own and the rest of the suite fills in around them
SLOWEST_FIRST = ("test_judge.py", "test_hostile.py")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.path.name not in SLOWEST_FIRST)  # stable: the rest keep their order


@pytest.fixture(scope="session", autouse=True)
def compiled_reader():
    """The fast ndjson reader loaded before any test runs. On a fresh clone its first use
    compiles it for 10 to 30 s, and `preprocess` then says so: a test that compares its
    output would see that line, depending on which test came first (and the compilations of
    two workers at once would race)."""
    from qdsketch.data.ndjson import load_kernels

    load_kernels()


@pytest.fixture(autouse=True)
def no_qdsketch_home(monkeypatch):
    """Defaults are the test's own folder, never the $QDSKETCH_HOME a developer has set
    (subprocesses inherit this too); a test that wants one sets it."""
    monkeypatch.delenv(HOME_ENV, raising=False)


@pytest.fixture
def mirror(tmp_path):
    """The shipped simplified and raw files, served in Google's layout."""
    root = tmp_path / "mirror"
    for fmt in ("simplified", "raw"):
        target = root / "full" / fmt
        target.mkdir(parents=True)
        for f in (DATA / fmt).glob("*.ndjson"):
            shutil.copy(f, target / f.name)
    m = Mirror(root)
    m.thread.start()
    yield m
    m.server.shutdown()
    m.server.server_close()


@pytest.fixture
def run(tmp_path, monkeypatch):
    """The CLI, in-process, from ``tmp_path`` (so relative defaults such as
    data/ and runs/ land there): ``run("sample", "cat", "-o", path)``; any
    argument is passed as ``str(arg)``."""
    from click.testing import CliRunner

    from qdsketch.cli import cli

    monkeypatch.chdir(tmp_path)
    return lambda *args: CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def data_copy(tmp_path):
    """A data directory holding the shipped drawings, as `download --from` leaves it."""
    target = tmp_path / "data"
    for fmt in ("simplified", "raw"):
        shutil.copytree(DATA / fmt, target / fmt)
    return target


@pytest.fixture(scope="session")
def dataset_path(tmp_path_factory):
    """The five reference classes from the shipped drawings, as `preprocess` writes them."""
    from qdsketch.data.npz import save_npz
    from qdsketch.data.preprocess import build_dataset

    path = tmp_path_factory.mktemp("dataset") / "dataset.npz"
    save_npz(build_dataset(DATA, FIVE), path)
    return path


@pytest.fixture(scope="session")
def sharded_path(tmp_path_factory):
    """The same drawings as ``dataset_path``, as a sharded dataset of small
    shards (about 10 drawings), so that every split spans several."""
    from qdsketch.data.plan import Plan
    from qdsketch.data.shards import write_shards

    path = tmp_path_factory.mktemp("sharded") / "five"
    write_shards(Plan.of(DATA, FIVE), path, shard_drawings=10)
    return path
