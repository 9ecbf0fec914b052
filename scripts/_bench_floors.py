"""The webhook benchmark's two floors, served by uvicorn like Rimay and driven by the same callers.

- The bare floor: a FastAPI app answering every webhook with the same TwiML menu. Nothing can be faster.
- The database floor: the same app, but each webhook first commits one write for its call (an upsert of
  the call's step count, one statement, on the same database with the same engine settings as Rimay).
  A hotline that commits each answer before the next prompt (as Rimay must) cannot do less per step, so
  this is the most any such design could reach on the machine, whatever its code.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from sqlalchemy import Column, Insert, Integer, MetaData, String, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from starlette.types import Lifespan
from twilio.twiml.voice_response import VoiceResponse

from app.db.engine import is_sqlite, make_async_engine, make_sync_engine

FLOOR_PATH = "/twilio/voice/sessions/floor/steps/1"
CALLS = Table(
    "bench_floor_calls",
    MetaData(),
    Column("call_sid", String(64), primary_key=True),
    Column("steps", Integer, nullable=False),
)


def constant_twiml() -> str:
    """The floors' answer: a one-key menu, as Rimay's main menu reads."""
    reply = VoiceResponse()
    gather = reply.gather(action=FLOOR_PATH, num_digits=1, timeout=6)
    gather.say("Menú principal. Para escuchar sus derechos e información, marque 1.", language="es-MX")
    reply.redirect(FLOOR_PATH)
    return str(reply)


def _served(lifespan: Lifespan[FastAPI] | None = None) -> FastAPI:
    """An app with the health check `serving` waits for before driving it."""
    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def floor_app() -> FastAPI:
    """The bare floor (uvicorn factory): every POST gets the constant TwiML."""
    body = constant_twiml()
    app = _served()

    @app.post("/{path:path}")
    async def constant(path: str) -> Response:
        return Response(body, media_type="application/xml")

    return app


def step_upsert(postgres: bool) -> Insert:
    """One statement per webhook: the call's row is created, or its step count goes up by one."""
    builder = postgresql.insert if postgres else sqlite.insert
    statement = builder(CALLS).values(call_sid=bindparam("sid"), steps=1)
    statement = statement.on_conflict_do_update(
        index_elements=[CALLS.c.call_sid], set_={"steps": CALLS.c.steps + 1}
    )
    return statement.returning(CALLS.c.steps)


def create_calls_table(url: str) -> None:
    """The database floor's one table, made before its workers start (two would race to make it)."""
    engine = make_sync_engine(url)
    try:
        CALLS.create(engine, checkfirst=True)
    finally:
        engine.dispose()


def database_floor_app() -> FastAPI:
    """The database floor (uvicorn factory): reads the form, commits the call's step, answers the TwiML.

    Served on ``RIMAY_DATABASE_URL`` with Rimay's engine settings; a POST without a CallSid gets 400.
    """
    url = os.environ["RIMAY_DATABASE_URL"]
    engine = make_async_engine(url, pool_pre_ping=True)
    statement = step_upsert(postgres=not is_sqlite(url))
    body = constant_twiml()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = _served(lifespan)

    @app.post("/{path:path}")
    async def step(path: str, request: Request) -> Response:
        call_sid = (await request.form()).get("CallSid")
        if not isinstance(call_sid, str) or not call_sid:
            return Response("CallSid is required", status_code=400)
        async with engine.begin() as connection:
            (await connection.execute(statement, {"sid": call_sid})).scalar_one()
        return Response(body, media_type="application/xml")

    return app
