"""The README and the docs pages: every relative link resolves, the README stays a front door, and CI
runs the README's own test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DEMO_COMMAND = "pip install torch==2.14.1 torchvision==0.29.1 && pip install -e . && microaunet demo"
TEST_COMMAND = (
    "pip install torch==2.14.1 torchvision==0.29.1 && pip install -e '.[dev]' && python -m pytest -q"
)


def relative_links(markdown: str) -> list[str]:
    """Targets of inline links ``[text](target)`` outside code blocks and spans, less URLs and
    in-page anchors; a target's own ``#anchor`` is cut off."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [
        t.split("#")[0] for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")
    ]


def test_relative_links_finds_file_links_only():
    md = "[a](docs/x.md) [b](https://e.org) [c](#top) [d](y.md#sec) `[e](z.md)`\n```\n[f](w.md)\n```"
    assert relative_links(md) == ["docs/x.md", "y.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    missing = [t for t in relative_links(page.read_text()) if not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to files that do not exist: {missing}"


def test_readme_is_short_and_opens_with_the_set_up_commands():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    sections = readme.split("\n## ")
    assert sections[1].startswith("Set up")
    assert DEMO_COMMAND in sections[1] and TEST_COMMAND in sections[1]


def test_ci_runs_the_readme_test_command_verbatim():
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text()
