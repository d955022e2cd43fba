"""The docs stay in step with the code: the CLI reference is --help itself.

Run `QDSKETCH_UPDATE_DOCS=1 pytest tests/test_docs.py` to rewrite docs/cli.md.
"""

import os
from pathlib import Path

from click.testing import CliRunner

from qdsketch.cli import cli

DOCS = Path(__file__).parents[1] / "docs"


def cli_reference() -> str:
    parts = [
        "# Command-line reference\n",
        "Generated from `--help` by tests/test_docs.py; do not edit by hand.\n",
    ]
    for args in [[]] + [[name] for name in cli.commands]:
        result = CliRunner().invoke(cli, args + ["--help"], terminal_width=100, prog_name="qdsketch")
        title = " ".join(["qdsketch"] + args)
        parts.append(f"## `{title}`\n\n```\n{result.output.rstrip()}\n```\n")
    return "\n".join(parts)


def test_cli_reference_is_current():
    path = DOCS / "cli.md"
    text = cli_reference()
    if os.environ.get("QDSKETCH_UPDATE_DOCS"):
        path.write_text(text)
    assert path.read_text() == text, "docs/cli.md is stale: run QDSKETCH_UPDATE_DOCS=1 pytest tests/test_docs.py"


def test_every_command_has_help_and_a_docs_page_mentions_it():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name, command in cli.commands.items():
        assert command.help and "Example:" in command.help
        assert f"qdsketch {name}" in readme
