"""Voice answers for Twilio to play: only through a signed, expiring URL, never listed."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from app.cases.audio import ANSWER_MEDIA_TYPE, answer_path
from app.cases.media import MediaSigner
from app.deps import SettingsDep

router = APIRouter(include_in_schema=False)
AUDIO_ID = re.compile(r"[0-9a-f]{32}")


# A plain `def`: FastAPI runs it in a worker thread, so the file check never blocks the loop.
@router.api_route("/media/answers/{audio_id}.mp3", methods=["GET", "HEAD"])
def answer_audio(
    audio_id: str, request: Request, settings: SettingsDep, expires: int = 0, signature: str = ""
) -> Response:
    """The MP3 of a voice answer, for a URL this service signed in the last hour; 404 otherwise."""
    signer: MediaSigner = request.app.state.media_signer
    if not AUDIO_ID.fullmatch(audio_id) or not signer.valid(audio_id, expires, signature):
        return JSONResponse({"error": "not_found"}, status_code=404)
    path = answer_path(settings.data_dir, audio_id)
    if not path.is_file():
        return JSONResponse({"error": "not_found"}, status_code=404)
    headers = {"Cache-Control": "private, max-age=3600", "Referrer-Policy": "no-referrer"}
    return FileResponse(path, media_type=ANSWER_MEDIA_TYPE, headers=headers)
