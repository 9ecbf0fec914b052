"""Turn engine events into short SMS text: numbered menus, short texts, options after a message."""

from __future__ import annotations

import re
from collections.abc import Iterable

from app.flows.events import Ask, Event, PlayAnswer, Prompt, Say, SayCode
from app.flows.model import (
    ARTICLE_BACK_KEY,
    ARTICLE_NEXT_KEY,
    ARTICLE_REPEAT_KEY,
    LANGUAGE_KEY,
    MAIN_MENU_KEY,
    SKIP_KEY,
    CaseTopicNode,
    FlowDefinition,
    LanguageMenuNode,
    MenuNode,
    QuestionNode,
    Text,
    system_prompt_key,
)

_FIRST_SENTENCE = re.compile(r"^(.+?[.!?])(\s|$)")
_AFTER_ARTICLE = {system_prompt_key("after_article"), system_prompt_key("after_last_article")}


class SmsRenderer:
    """Renders one engine step of one flow as the text of an SMS reply."""

    def __init__(self, flow: FlowDefinition) -> None:
        self.flow = flow

    def render(self, events: Iterable[Event]) -> str:
        """The reply text; prompts in every language before one is chosen, as by voice."""
        blocks: list[str] = []
        shown: set[str] = set()
        for event in events:
            if isinstance(event, Say):
                blocks.extend(self._say(event.prompt, shown))
            elif isinstance(event, SayCode):
                blocks.append(self.text("case_code", event.prompt.language).format(code=event.code))
            elif isinstance(event, PlayAnswer):
                blocks.extend(self._answers(event))
            elif isinstance(event, Ask):
                blocks.extend(self._conventions(event))
        return "\n".join(block for block in blocks if block)

    def text(self, name: str, language: str | None) -> str:
        """A flow-level SMS text (help, opted_out...) in the caller's language, else the flow's first."""
        text = self.flow.sms[name]
        return text[language] if language in text else text[self.flow.languages[0]]

    def _say(self, prompt: Prompt, shown: set[str]) -> list[str]:
        if prompt.key in _AFTER_ARTICLE:
            return self._article_options(prompt)
        node = self.flow.nodes.get(prompt.key)
        if isinstance(node, LanguageMenuNode):
            return self._language_menu(prompt.key, node, shown)
        if isinstance(node, QuestionNode):
            return self._question(node, prompt.language)
        if isinstance(node, MenuNode | CaseTopicNode):
            return self._numbered(node, prompt.language)
        if node is not None and node.sms is not None:
            return [node.sms[prompt.language]]
        return [prompt.text]

    def _numbered(self, node: MenuNode | CaseTopicNode, language: str) -> list[str]:
        """A menu's heading and one line per option: "1 Agua y ambiente"."""
        labels = node.options if isinstance(node, MenuNode) else node.topics
        lines = [f"{key} {option.label[language]}" for key, option in labels.items() if option.label]
        return [_short(node.sms, node.prompt, language), *lines]

    def _answers(self, event: PlayAnswer) -> list[str]:
        """Written answers as they are; a voice answer can only be heard by calling."""
        texts = []
        for part in event.parts:
            if part.text is not None:
                texts.append(
                    self.text("case_text_answer", event.language).format(code=event.code, text=part.text)
                )
            else:
                texts.append(self.text("case_voice_answer", event.language).format(code=event.code))
        return texts

    def _question(self, node: QuestionNode, language: str) -> list[str]:
        """The question, its numbered choices (or the number it expects), and how to skip it."""
        skip = f"{SKIP_KEY} {self.flow.sms['skip'][language]}"
        if node.number is not None or node.open is not None:
            text = node.sms[language] if node.sms else node.prompt[language]
            return [text, skip]
        heading = _short(node.sms, node.prompt, language)
        choices = [f"{key} {choice.label[language]}" for key, choice in self.flow.choices(node).items()]
        return [heading, *choices, skip]

    def _language_menu(self, key: str, node: LanguageMenuNode, shown: set[str]) -> list[str]:
        """Once for all languages: its heading per language, then '1 Español', '2 Runasimi'."""
        if key in shown:
            return []
        shown.add(key)
        headings = [node.sms[lang] for lang in self.flow.languages] if node.sms else []
        return [*headings, *(f"{k} {self.flow.language_name(lang)}" for k, lang in node.options.items())]

    def _article_options(self, prompt: Prompt) -> list[str]:
        sms = self.flow.sms
        options = [(ARTICLE_REPEAT_KEY, "repeat")]
        if prompt.key == system_prompt_key("after_article"):
            options.append((ARTICLE_NEXT_KEY, "next"))
        options += [(ARTICLE_BACK_KEY, "back"), (MAIN_MENU_KEY, "main_menu")]
        return [f"{key} {sms[name][prompt.language]}" for key, name in options]

    def _conventions(self, ask: Ask) -> list[str]:
        """The keys every menu understands, listed where they help: 9 main menu, * language."""
        node = self.flow.nodes.get(ask.node)
        if not isinstance(node, MenuNode):
            return []
        language = ask.language
        if language is None:
            return []
        if ask.node != self.flow.main and MAIN_MENU_KEY in ask.keys:
            return [f"{MAIN_MENU_KEY} {self.flow.sms['main_menu'][language]}"]
        if LANGUAGE_KEY in ask.keys:
            return [f"{LANGUAGE_KEY} {self.flow.sms['change_language'][language]}"]
        return []


def _short(sms: Text | None, prompt: Text, language: str) -> str:
    """A menu's SMS heading, or the first sentence of its voice prompt."""
    if sms is not None:
        return sms[language]
    match = _FIRST_SENTENCE.match(prompt[language])
    return match.group(1) if match else prompt[language]
