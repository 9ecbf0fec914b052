"""Turn engine events into TwiML with the twilio SDK's VoiceResponse."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from twilio.twiml.voice_response import Gather, VoiceResponse

from app.audio.library import AudioLibrary
from app.flows.case_steps import answer_intro, spoken_code
from app.flows.events import Ask, Event, Hangup, PlayAnswer, PlayRecording, Prompt, Say, SayCode
from app.flows.model import FlowDefinition, system_prompt_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Media:
    """Something that is not a flow prompt: a recording or answer to <Play>, or an answer's text."""

    url: str | None = None
    text: str | None = None


Spoken = Prompt | _Media

SAY_VOICES = {"es": "es-MX"}
"""Languages Twilio's <Say> can speak; Quechua has no voice, so it is always <Play>."""
FALLBACK_LANGUAGE = "es"
"""Played (or said) in place of a prompt in a language with no audio and no Twilio voice."""


class VoiceRenderer:
    """Renders prompts as <Play> of their audio, with <Say> only as a fallback for Spanish text."""

    def __init__(
        self,
        audio: AudioLibrary,
        public_base_url: str,
        flows: Mapping[str, FlowDefinition] | None = None,
    ) -> None:
        self.audio = audio
        self.base_url = public_base_url
        # The Spanish text of a prompt, for a caller whose language has neither audio nor a voice.
        self.flows: Mapping[str, FlowDefinition] = flows or {}

    def render(self, events: Iterable[Event], action_url: str) -> str:
        """TwiML for one engine step; prompts before a question go inside <Gather> so callers can barge in."""
        response = VoiceResponse()
        pending: list[Spoken] = []
        for event in events:
            if isinstance(event, Say | SayCode | PlayRecording | PlayAnswer):
                pending.extend(self._spoken(event))
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
        self._add_prompts(response, prompts, flow)
        response.hangup()
        return str(response)

    def _spoken(self, event: Say | SayCode | PlayRecording | PlayAnswer) -> list[Spoken]:
        """What one event says or plays, in order."""
        if isinstance(event, Say):
            return [event.prompt]
        if isinstance(event, PlayRecording):
            return [_Media(url=event.url)]
        if isinstance(event, SayCode):
            flow = self.flows.get(event.prompt.flow_id)
            return list(spoken_code(flow, event.prompt, event.code)) if flow else [event.prompt]
        flow = self.flows.get(event.flow_id)
        parts: list[Spoken] = [_Media(url=part.audio_url, text=part.text) for part in event.parts]
        return [answer_intro(flow, event.language), *parts] if flow and parts else parts

    def _add_prompts(
        self, verb: VoiceResponse | Gather, prompts: Iterable[Spoken], flow: FlowDefinition | None = None
    ) -> None:
        for prompt in prompts:
            if isinstance(prompt, _Media):
                self._add_media(verb, prompt)
            else:
                self._add_prompt(verb, prompt, flow)

    def _add_media(self, verb: VoiceResponse | Gather, media: _Media) -> None:
        """A recording or voice answer is played; a written answer is read by the Spanish voice."""
        if media.url is not None:
            verb.play(media.url)
        elif media.text:
            verb.say(media.text, language=SAY_VOICES[FALLBACK_LANGUAGE])

    def _add_prompt(self, verb: VoiceResponse | Gather, prompt: Prompt, flow: FlowDefinition | None) -> None:
        audio = self.audio.lookup(prompt.language, prompt.flow_id, prompt.key)
        if audio is not None:
            verb.play(f"{self.base_url}{audio.url_path}")
            return
        voice = SAY_VOICES.get(prompt.language)
        if voice is not None:
            verb.say(prompt.text, language=voice)
            return
        self._add_fallback(verb, prompt, flow)

    def _add_fallback(
        self, verb: VoiceResponse | Gather, prompt: Prompt, flow: FlowDefinition | None
    ) -> None:
        """The same prompt in Spanish, for a language Twilio cannot speak whose audio is missing."""
        # A Spanish voice reading Quechua text is unintelligible; the prompt in Spanish is understood by
        # most callers and beats silence. The real fix is `rimay audio build` or a recording.
        audio = self.audio.lookup(FALLBACK_LANGUAGE, prompt.flow_id, prompt.key)
        text = self._fallback_text(prompt, flow)
        if audio is not None:
            verb.play(f"{self.base_url}{audio.url_path}")
            instead = "played the Spanish audio instead"
        elif text is not None:
            verb.say(text, language=SAY_VOICES[FALLBACK_LANGUAGE])
            instead = "said the Spanish text instead"
        else:
            instead = "skipped it (no Spanish audio or text either)"
        log.error(
            "no audio for flow %s, node %s, language %s (no Twilio voice): %s; run `rimay audio build`",
            prompt.flow_id,
            prompt.key,
            prompt.language,
            instead,
        )

    def _fallback_text(self, prompt: Prompt, flow: FlowDefinition | None) -> str | None:
        """The same prompt's Spanish text, from the flow it belongs to."""
        if flow is None or flow.id != prompt.flow_id:
            flow = self.flows.get(prompt.flow_id)
        if flow is None:
            return None
        return dict(flow.prompts()).get(prompt.key, {}).get(FALLBACK_LANGUAGE)
