"""The French README and INSTALL follow the English ones: same sections, commands and figures.

Prose is free to differ; what a reader types or reads as a value may not, nor the paragraphs,
list items and table rows of each section. Comments inside code blocks may be translated, so
they are dropped before comparing. A sentence added to an English paragraph with no code, figure
or file name in it goes unseen: carry it over by hand.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAIRS = [
    (ROOT / "README.md", ROOT / "README.fr.md"),
    (ROOT / "docs" / "INSTALL.md", ROOT / "docs" / "INSTALL.fr.md"),
]
IDS = [english.name for english, _ in PAIRS]

# Fences may be indented, inside a numbered step.
FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
# A comment starts a line or follows a blank: 'enerbox/#' is a topic, not a comment.
COMMENT = re.compile(r"(^|\s)#(\s.*|)$")
CODE_SPAN = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
NUMBER = re.compile(r"\d+(?:\.\d+)*")
# A file named in plain prose (docs/HOME-ASSISTANT.md, docker-compose.yml).
FILE_NAME = re.compile(
    r"(?<![\w/.-])(?:[\w.-]+/)*\w[\w.-]*\.(?:md|ya?ml|py|sh|json|env|conf|txt|acl)\b"
)
# The line each file gives to the other language.
OTHER_LANGUAGE = re.compile(r"^(En français|In English) ?:.*$", re.MULTILINE)


def read(path: Path) -> str:
    return OTHER_LANGUAGE.sub("", path.read_text(encoding="utf-8"))


def code_blocks(text: str) -> list[list[str]]:
    """Each fenced block's lines, comments and blank lines dropped, spaces trimmed."""
    blocks = []
    for body in FENCE.findall(text):
        lines = [COMMENT.sub("", line).rstrip() for line in body.splitlines()]
        blocks.append([line.strip() for line in lines if line.strip()])
    return blocks


def prose(text: str) -> str:
    return FENCE.sub("", text)


def code_spans(text: str) -> set[str]:
    """Inline code of the prose, a span wrapped across lines made one line."""
    return {" ".join(span.split()) for span in CODE_SPAN.findall(prose(text))}


def shape(text: str) -> list[tuple[int, int, int]]:
    """Per section: paragraphs, list items and table rows, so that a sentence-only addition to
    the English shows as soon as it makes a new paragraph, item or row."""
    sections = re.split(r"^#{2,3} .*$", prose(text), flags=re.MULTILINE)
    return [
        (
            len([paragraph for paragraph in re.split(r"\n\s*\n", section) if paragraph.strip()]),
            len(re.findall(r"^\s*(?:[-*]|\d+\.) ", section, re.MULTILINE)),
            len(re.findall(r"^\|", section, re.MULTILINE)),
        )
        for section in sections
    ]


def file_names(text: str) -> Counter[str]:
    """Files named in the prose outside inline code, a French page counted as its English one;
    counted, since a new sentence often names a file the doc already names elsewhere."""
    found = FILE_NAME.findall(CODE_SPAN.sub("", prose(text)))
    return Counter(name.replace(".fr.md", ".md") for name in found)


def headings(text: str, level: int) -> int:
    return len(re.findall(rf"^{'#' * level} ", prose(text), re.MULTILINE))


def figures(text: str, *, french: bool) -> set[str]:
    """The numbers of the prose, thousands separators and a French decimal comma undone."""
    text = CODE_SPAN.sub("", prose(text))
    text = re.sub(r"(\d)[\u00a0\u202f ](?=\d{3}\b)", r"\1", text)
    if french:
        text = re.sub(r"(\d),(?=\d)", r"\1.", text)
    else:
        text = re.sub(r"(\d),(?=\d{3}\b)", r"\1", text)
    return set(NUMBER.findall(text))


@pytest.fixture(params=PAIRS, ids=IDS)
def pair(request: pytest.FixtureRequest) -> tuple[str, str]:
    english, french = request.param
    return read(english), read(french)


def test_each_english_doc_links_to_its_french_one() -> None:
    for english, french in PAIRS:
        assert f"({french.name})" in english.read_text(encoding="utf-8"), english


def test_same_sections(pair: tuple[str, str]) -> None:
    english, french = pair
    for level in (2, 3):
        assert headings(french, level) == headings(english, level), f"{'#' * level} sections"


def test_same_paragraphs(pair: tuple[str, str]) -> None:
    english, french = pair
    en, fr = shape(english), shape(french)
    assert len(fr) == len(en)
    for number, (en_section, fr_section) in enumerate(zip(en, fr, strict=True)):
        assert fr_section == en_section, f"section {number}: (paragraphs, items, rows)"


def test_same_file_names(pair: tuple[str, str]) -> None:
    english, french = pair
    en, fr = file_names(english), file_names(french)
    assert (en - fr, fr - en) == (Counter(), Counter()), "(missing in French, only in French)"


def test_same_code_blocks(pair: tuple[str, str]) -> None:
    """Commands, configs and outputs identical, block by block, but for their comments."""
    english, french = pair
    en_blocks, fr_blocks = code_blocks(english), code_blocks(french)
    assert len(fr_blocks) == len(en_blocks)
    for number, (en, fr) in enumerate(zip(en_blocks, fr_blocks, strict=True), start=1):
        assert fr == en, f"code block {number}"


def test_same_inline_code(pair: tuple[str, str]) -> None:
    """Keys, file names, topics and commands quoted in the prose: the same in both."""
    english, french = pair
    en, fr = code_spans(english), code_spans(french)
    assert (sorted(en - fr), sorted(fr - en)) == ([], []), "(missing in French, only in French)"


def test_same_figures(pair: tuple[str, str]) -> None:
    english, french = pair
    en, fr = figures(english, french=False), figures(french, french=True)
    assert (sorted(en - fr), sorted(fr - en)) == ([], []), "(missing in French, only in French)"


def test_same_links(pair: tuple[str, str]) -> None:
    """Every page the English links to, or its French version, is linked from the French."""
    english, french = pair
    targets = set(LINK.findall(french))
    missing = [
        target
        for target in LINK.findall(english)
        if target not in targets and target.replace(".md", ".fr.md") not in targets
    ]
    assert not missing, missing
