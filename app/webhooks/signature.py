"""Twilio request signatures, checked with the twilio SDK's RequestValidator before anything is written."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from twilio.request_validator import RequestValidator

from app.deps import SettingsDep

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Twilio-Signature"


def public_url(base_url: str, request: Request) -> str:
    """The URL Twilio requested: the public base URL, the path and the query, exactly as signed."""
    query = request.url.query
    return f"{base_url}{request.url.path}" + (f"?{query}" if query else "")


class TwilioSignature:
    """Dependency that returns the posted parameters of a correctly signed request, else 403."""

    async def __call__(self, request: Request, settings: SettingsDep) -> dict[str, str]:
        form = await request.form()
        params = {key: value for key, value in form.multi_items() if isinstance(value, str)}
        signature = request.headers.get(SIGNATURE_HEADER, "")
        validator = RequestValidator(settings.auth_token)
        if not signature or not validator.validate(
            public_url(settings.public_base_url, request), params, signature
        ):
            log.warning(
                "refused %s %s: missing or invalid Twilio signature", request.method, request.url.path
            )
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="invalid_signature")
        return params


TwilioForm = Annotated[dict[str, str], Depends(TwilioSignature())]
"""The posted parameters of a Twilio webhook whose signature checked out."""
