"""The shipped hotline: it loads and lints clean, and keeps the keys and library its posters promise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from app.flows.loader import lint_flows, load_flows
from app.flows.model import ArticleNode, FlowDefinition, LanguageMenuNode, MenuNode
from tests.conftest import ROOT

MAX_SPANISH_WORDS = 100
"""45 s at 135 words a minute, a slow and clear pace for a rural phone line (150 wpm would allow 112)."""


def test_shipped_flows_load() -> None:
    """The shipped hotline loads, including the news items of its included file."""
    flows = load_flows(ROOT / "voice_flows")
    assert list(flows) == ["hotline"]
    assert {"news_1", "news_2", "news_3"} <= set(flows["hotline"].nodes)


def test_shipped_flows_lint_notes_the_quechua_draft(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lint finds no problem in the shipped flows and reminds that the Quechua text is a draft."""
    monkeypatch.chdir(ROOT)
    assert lint_flows(Path("voice_flows")) == (
        [],
        [
            "voice_flows/hotline.yaml:(flow): note: "
            "Quechua (qu) text is a draft awaiting review by native speakers"
        ],
    )


def _messages(flow: FlowDefinition, first: str) -> list[tuple[str, ArticleNode]]:
    """A library category's messages: the article chain it starts, through its own menu if it has one."""
    node = flow.node(first)
    if isinstance(node, MenuNode):
        first = next(o.next for o in node.options.values() if isinstance(flow.node(o.next), ArticleNode))
    chain: list[tuple[str, ArticleNode]] = []
    current: str | None = first
    while current is not None:
        article = flow.node(current)
        assert isinstance(article, ArticleNode), f"{current} is in a message chain but is not a message"
        chain.append((current, article))
        current = article.next
    return chain


def test_shipped_hotline_keeps_its_poster_keys_and_library() -> None:
    """Posters print these keys; the library has 4+ categories of 2+ short, sourced messages."""
    hotline = load_flows(ROOT / "voice_flows")["hotline"]
    language = hotline.node(hotline.language_menu() or "")
    assert isinstance(language, LanguageMenuNode)
    assert language.options == {"1": "es", "2": "qu"}
    main = hotline.node(hotline.main)
    assert isinstance(main, MenuNode)
    # 3 (ask a question) and 4 (my answers) join only when they work; keys never move or skip.
    assert sorted(main.options) == ["1", "2", "3", "4"][: len(main.options)]
    assert len(main.options) >= 2
    assert main.options["1"].next == "library"
    assert main.options["2"].next == "survey"
    library = hotline.node("library")
    assert isinstance(library, MenuNode)
    categories = {key: _messages(hotline, option.next) for key, option in library.options.items()}
    assert len(categories) >= 4
    for key, messages in categories.items():
        assert len(messages) >= 2, f"library key {key} has fewer than two messages"
        for node_id, message in messages:
            assert len(message.source.split()) >= 2, f"{node_id}: name the law or institution"
            words = len(re.findall(r"\w+", message.prompt["es"]))
            assert words <= MAX_SPANISH_WORDS, f"{node_id}: {words} Spanish words is over 45 s"
    sources = {key: " ".join(m.source for _, m in messages) for key, messages in categories.items()}
    cited = {"1": ("27446", "028-2008-EM"), "2": ("29785",), "3": ("OEFA", "Defensoría del Pueblo")}
    for key, names in cited.items():  # EIA participation, prior consultation, complaints
        assert [name for name in names if name not in sources[key]] == [], f"library key {key}"
    news_file = yaml.safe_load((ROOT / "voice_flows" / "parts" / "news.yaml").read_text(encoding="utf-8"))
    assert {node_id for node_id, _ in categories["4"]} <= set(news_file["nodes"])  # operator-editable
