"""The prompt audio a benchmarked service serves: as deployed, every prompt has a recording or a draft."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from app.audio.build import build_audio
from app.audio.library import AudioLibrary
from app.audio.synth import EspeakSynthesizer
from app.flows.loader import load_flows


def prompt_audio(given: Path | None, root: Path, folder: Path) -> Path | None:
    """``given`` (a data dir's built ``audio`` folder), else drafts built now into ``folder`` with espeak-ng.

    Without them, a prompt that has no audio in Quechua (Twilio has no Quechua voice) is said in Spanish
    and logged as an error on every call: not what a deployment does (`rimay serve` builds the drafts).
    """
    if given is not None:
        if not given.is_dir():
            raise SystemExit(f"--audio {given}: not a folder")
        return given
    if not (shutil.which("espeak-ng") and shutil.which("lame")):
        print("no espeak-ng or lame: prompts without audio are said by Twilio's voice", file=sys.stderr)
        return None
    built = folder / "audio"
    report = build_audio(
        load_flows(root / "voice_flows").values(), AudioLibrary(root / "audio", built), EspeakSynthesizer()
    )
    if not report.ok:
        raise SystemExit(f"building the prompt audio failed: {report.summary()}")
    return built
