"""Serve prompt audio to Twilio with strong ETags and cache headers keyed to the file's version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from app.audio.library import AudioLibrary

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=300"

router = APIRouter(tags=["audio"])


async def get_audio_library(request: Request) -> AudioLibrary:
    """The app's audio library, which the app factory puts in ``app.state.audio``."""
    library = getattr(request.app.state, "audio", None)
    if not isinstance(library, AudioLibrary):
        raise TypeError("app.state.audio is not set: the app factory must store an AudioLibrary there")
    return library


AudioLibraryDep = Annotated[AudioLibrary, Depends(get_audio_library)]


# `{filename:path}` lets an encoded slash reach this handler and get the same JSON 404 as any unknown name.
# A plain `def`: FastAPI runs it in a worker thread, so the stat and any index rebuild never block the loop.
@router.api_route(
    "/audio/{language}/{flow_id}/{filename:path}", methods=["GET", "HEAD"], include_in_schema=False
)
def audio_file(
    language: str,
    flow_id: str,
    filename: str,
    *,
    request: Request,
    library: AudioLibraryDep,
    v: str | None = None,
) -> Response:
    """Answer a prompt's audio file, 304 when the caller's copy is current, or a JSON 404."""
    audio = library.resolve_file(language, flow_id, filename)
    if audio is None:
        return JSONResponse({"error": "audio_not_found"}, status_code=404)
    # A URL carrying the current version names these exact bytes forever; any other may change soon.
    headers = {"ETag": audio.etag, "Cache-Control": IMMUTABLE if v == audio.version else REVALIDATE}
    if etag_matches(request.headers.get("if-none-match"), audio.etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(audio.path, media_type=audio.media_type, headers=headers)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True when an ``If-None-Match`` header names the ETag (weak comparison, as RFC 9110 asks)."""
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates
