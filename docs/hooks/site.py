"""mkdocs hooks: the pages and files the docs build writes itself.

- ``reference/cli.md``: every ``levit-tf`` verb's ``--help`` and ``python -m levit_tf.beam
  --help``, from the argparse parsers (``CLI_PARSERS``), so the page cannot drift from the code;
- ``benchmarks/README.md``, ``contributing.md``, ``changelog.md``: the repository's own files,
  served as pages (they stay readable on the forge too);
- every figure and text output under ``benchmarks/results/``, which the Performance pages show
  and include (``--8<--``) exactly as the benchmark scripts wrote them;
- ``build/docs-api/``: the package laid out as it installs (pyproject's ``package-dir`` remap puts
  ``converters/`` and ``tflite/`` at ``levit_tf.converters`` / ``levit_tf.tflite``), which is
  where mkdocstrings reads the API reference's docstrings (statically: nothing is imported).
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
from pathlib import Path

import tomllib
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[2]
RESULTS = "benchmarks/results"
RESULT_SUFFIXES = (".png", ".txt")
REPO_PAGES = {  # repository file -> its page in the site
    "benchmarks/README.md": "benchmarks/README.md",
    "CONTRIBUTING.md": "contributing.md",
    "CHANGELOG.md": "changelog.md",
}
# (module with build_parser(), the command a user types). The one place the CLI's modules are
# named; update it when they move.
CLI_PARSERS = (("levit_tf.cli.app", "levit-tf"),
               ("levit_tf.beam.__main__", "python -m levit_tf.beam"))
HELP_COLUMNS = "100"
API_SOURCES = "build/docs-api"  # mkdocs.yml's mkdocstrings `paths`


def lay_out_package(target: Path) -> None:
    """Copies the package's sources to ``target`` the way setuptools installs them."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dirs = setuptools.get("package-dir", {"levit_tf": "levit_tf"})
    shutil.rmtree(target, ignore_errors=True)
    # parents before children: levit_tf/ first, then levit_tf.tflite into levit_tf/tflite/
    for package, source in sorted(package_dirs.items(), key=lambda kv: kv[0]):
        shutil.copytree(REPO / source, target / package.replace(".", "/"), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public accessor for subparsers
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_block(text: str) -> str:
    return "```text\n" + text.rstrip() + "\n```\n"


def cli_reference() -> str:
    """The CLI reference page: each parser's --help, then each verb's."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS  # argparse wraps to the terminal width
    try:
        parts = ["# CLI reference\n",
                 "Generated from the argparse parsers when the site is built: what `--help` "
                 "prints, verb by verb.\n"]
        for module, command in CLI_PARSERS:
            parser = importlib.import_module(module).build_parser()
            parts += [f"## `{command}`\n", _help_block(parser.format_help())]
            for verb, subparser in _subcommands(parser).items():
                parts += [f"### `{command} {verb}`\n", _help_block(subparser.format_help())]
        return "\n".join(parts)
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


@event_priority(100)  # before mkdocstrings' on_config, which resolves its `paths` (a glob)
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Lays out build/docs-api first: mkdocstrings drops a `paths` entry that does not exist yet
    and falls back to the repository root, where levit_tf/ has no converters/ (a fresh clone's
    first build failed on `levit_tf.converters.load_pretrained`)."""
    lay_out_package(REPO / API_SOURCES)
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for path in sorted((REPO / RESULTS).rglob("*")):
        if path.suffix in RESULT_SUFFIXES:
            files.append(File(path.relative_to(REPO).as_posix(), str(REPO), config.site_dir,
                              config.use_directory_urls))
    for source, page in REPO_PAGES.items():
        files.append(File.generated(config, page, content=(REPO / source).read_text()))
    files.append(File.generated(config, "reference/cli.md", content=cli_reference()))
    return files
