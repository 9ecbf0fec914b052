"""The application factory: `uvicorn --factory app.main:create_app`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import health
from app.apikeys.deps import add_api_key_error_handler
from app.audio.endpoints import router as audio_router
from app.audio.library import AudioLibrary
from app.cases.endpoints import router as cases_router
from app.cases.media import MediaSigner
from app.contacts.crypto import ContactCipher
from app.db.engine import make_async_engine, make_sessionmaker
from app.floip.endpoints import router as floip_router
from app.flows.loader import FlowLoadError, load_flows
from app.logs import configure_logging
from app.metrics import add_metrics
from app.outbox.endpoints import router as outbox_router
from app.privacy.pseudonym import Pseudonymizer
from app.settings import ConfigurationError, Settings, get_settings
from app.sms.endpoints import router as sms_router
from app.sms.fallback import router as sms_fallback_router
from app.stats.endpoints import document_examples
from app.stats.endpoints import router as stats_router
from app.stats.errors import add_stats_error_handler
from app.throttle.service import ThrottleKeys
from app.voice.endpoints import router as voice_router
from app.voice.endpoints import status_router as voice_status_router
from app.voice.fallback import router as voice_fallback_router
from app.voice.twiml import VoiceRenderer
from app.web.setup import add_web
from app.webhooks.admission import Admission

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; refuse to start on unsafe settings or an invalid flow, saying what to fix."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    settings.check()
    flows = load_flows(settings.flows_dir)
    if settings.default_flow not in flows:
        raise ConfigurationError(
            f"RIMAY_DEFAULT_FLOW={settings.default_flow!r} is not among the flows in {settings.flows_dir}: "
            f"{', '.join(sorted(flows))}"
        )
    engine = make_async_engine(settings.sqlalchemy_url, pool_pre_ping=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Made here, on the loop that serves the requests (an asyncio primitive belongs to one loop).
        app.state.admission = Admission(settings.webhook_slots, settings.webhook_queue_seconds)
        yield
        await engine.dispose()

    app = FastAPI(
        title="Rimay",
        version="0.1.0",
        lifespan=lifespan,
        description="IVR and SMS hotline for communities affected by mining.",
    )
    audio = AudioLibrary(settings.audio_dir, settings.generated_audio_dir)
    audio.refresh()  # index (and hash) the files now, not on the first caller's webhook
    app.state.settings = settings
    app.state.flows = flows
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.audio = audio
    app.state.voice = VoiceRenderer(audio, settings.public_base_url, flows)
    app.state.pseudonyms = Pseudonymizer(settings.master_secret)
    app.state.throttle_keys = ThrottleKeys(settings.master_secret)
    app.state.media_signer = MediaSigner(settings.master_secret)
    cipher = ContactCipher.from_secret(settings.contact_secret)
    app.state.contact_cipher = cipher
    app.include_router(voice_router)
    app.include_router(voice_status_router)
    app.include_router(sms_router)
    app.include_router(voice_fallback_router)
    app.include_router(sms_fallback_router)
    app.include_router(audio_router)
    app.include_router(cases_router)
    app.include_router(outbox_router)
    app.include_router(floip_router)
    app.include_router(stats_router)
    app.include_router(health.router)
    add_api_key_error_handler(app)
    add_stats_error_handler(app)
    document_examples(app)
    add_web(app, settings)
    add_metrics(app)
    return app


__all__ = ["ConfigurationError", "FlowLoadError", "create_app"]
