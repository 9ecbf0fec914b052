"""Turn engine events into TwiML with the twilio SDK's VoiceResponse."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from twilio.twiml.voice_response import Gather, VoiceResponse

from app.audio.library import AudioLibrary
from app.flows.events import Ask, Event, Hangup, Prompt, Say
from app.flows.model import FlowDefinition, system_prompt_key

log = logging.getLogger(__name__)

SAY_VOICES = {"es": "es-MX"}
"""Languages Twilio's <Say> can speak; Quechua has no voice, so it is always <Play>."""


class VoiceRenderer:
    """Renders prompts as <Play> of their audio, with <Say> only as a fallback for Spanish text."""

    def __init__(self, audio: AudioLibrary, public_base_url: str) -> None:
        self.audio = audio
        self.base_url = public_base_url

    def render(self, events: Iterable[Event], action_url: str) -> str:
        """TwiML for one engine step; prompts before a question go inside <Gather> so callers can barge in."""
        response = VoiceResponse()
        pending: list[Prompt] = []
        for event in events:
            if isinstance(event, Say):
                pending.append(event.prompt)
            elif isinstance(event, Ask) and event.record_seconds is not None:
                # <Record> cannot hold prompts: they play first. Twilio skips the action when it hears
                # nothing, so the <Redirect> brings silence back to the same step as "no input".
                self._add_prompts(response, pending)
                pending = []
                response.record(
                    action=action_url,
                    method="POST",
                    max_length=event.record_seconds,
                    finish_on_key=event.finish_on_key,
                    play_beep=True,
                    trim="trim-silence",
                    timeout=5,
                )
                response.redirect(action_url, method="POST")
            elif isinstance(event, Ask):
                gather = Gather(
                    input="dtmf",
                    num_digits=event.max_digits,
                    timeout=event.timeout,
                    action=action_url,
                    method="POST",
                    action_on_empty_result=True,
                    # On a menu '#' is a key like any other; a number is finished with '#'.
                    finish_on_key=event.finish_on_key,
                )
                self._add_prompts(gather, pending)
                response.append(gather)
                pending = []
            elif isinstance(event, Hangup):
                self._add_prompts(response, pending)
                response.hangup()
                pending = []
        self._add_prompts(response, pending)
        return str(response)

    def apology(self, flow: FlowDefinition, languages: Iterable[str] | None = None) -> str:
        """A short apology in the caller's language (or every language), then <Hangup/>."""
        text = flow.system["error"]
        response = VoiceResponse()
        prompts = [
            Prompt(flow.id, system_prompt_key("error"), lang, text[lang])
            for lang in languages or flow.languages
        ]
        self._add_prompts(response, prompts)
        response.hangup()
        return str(response)

    def _add_prompts(self, verb: VoiceResponse | Gather, prompts: list[Prompt]) -> None:
        for prompt in prompts:
            audio = self.audio.lookup(prompt.language, prompt.flow_id, prompt.key)
            if audio is not None:
                verb.play(f"{self.base_url}{audio.url_path}")
                continue
            voice = SAY_VOICES.get(prompt.language)
            if voice is None:
                # Run `rimay audio build`; a Spanish voice reading the text beats silence on a live call.
                log.error(
                    "no audio for %s/%s/%s and no Twilio voice for it",
                    prompt.language,
                    prompt.flow_id,
                    prompt.key,
                )
                voice = SAY_VOICES["es"]
            verb.say(prompt.text, language=voice)
