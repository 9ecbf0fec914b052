"""Benchmark the statistics API: fill the rollups through the real code at several sizes, time each endpoint.

Usage: .venv/bin/python scripts/bench_stats.py [--quick] [--sizes 10000,100000,1000000] [--repeat 30]
       [--database-url postgresql://user@host/admin_db]

Each size gets a fresh database with synthetic callers (random pseudonyms, never numbers), sessions and
their interactions spread over the same calendar, so a bigger size is a busier hotline. Raw rows are
inserted in bulk; the statistics are counted by ``SessionStats.step`` and ``CaseStats``, exactly as
webhooks and case staff count them. Then the four endpoints are called in process, against a bare
FastAPI endpoint as the floor of the HTTP stack.
"""

# ruff: noqa: S311  (seeded random numbers make the synthetic data the same on every run)

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any, cast

import httpx
from annotated_types import Le
from fastapi import FastAPI
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from app.apikeys.service import ApiKeyService  # noqa: E402
from app.cases.models import Case  # noqa: E402
from app.db.base import Base  # noqa: E402
from app.db.engine import is_sqlite, make_sync_engine  # noqa: E402
from app.db.migrate import upgrade  # noqa: E402
from app.flows.events import (  # noqa: E402
    LanguageChosen,
)
from app.flows.loader import load_flows  # noqa: E402
from app.flows.model import FlowDefinition  # noqa: E402
from app.main import create_app  # noqa: E402
from app.sessions.models import CallSession  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.stats import reports, rollup  # noqa: E402
from app.stats.cases import CaseStats  # noqa: E402
from app.stats.models import StatsCount  # noqa: E402
from scripts._blocking import BlockingSession  # noqa: E402
from scripts._stats_synthetic import (  # noqa: E402
    DEFAULT_SIZES,
    FIRST_DAY,
    FLOW_ID,
    QUICK_SIZES,
    ZONE,
    Persona,
    Plan,
    Planned,
    Synthetic,
    _rows,
)

ENDPOINTS: dict[str, tuple[str, dict[str, str]]] = {
    "participation": ("/api/v1/stats/participation", {"group_by": "gender,channel", "period": "month"}),
    "library": ("/api/v1/stats/library", {"group_by": "channel"}),
    "survey": ("/api/v1/stats/survey/agua", {"group_by": "gender"}),
    "cases": ("/api/v1/stats/cases", {}),
}


class Clock:
    """The rollup's clock during the fill: each step happens at its planned moment."""

    def __init__(self) -> None:
        self.now = datetime(2024, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@contextmanager
def patched_clock(clock: Clock) -> Iterator[None]:
    """Point the rollup's ``utcnow`` (play timing) at the synthetic clock, and restore it after."""
    saved = vars(rollup)["utcnow"]
    setattr(rollup, "utcnow", clock)  # noqa: B010 - the module imports utcnow privately
    try:
        yield
    finally:
        setattr(rollup, "utcnow", saved)  # noqa: B010


@dataclass
class Filled:
    """What a fill wrote and how long it took."""

    interactions: int
    sessions: int
    callers: int
    counters: int
    seconds: float


async def fill(url: str, synthetic: Synthetic, size: int, seed: int, batch: int) -> Filled:
    """Fill a migrated database with ``size`` interactions, counting every session through the rollups."""
    personas, planned, total = synthetic.world(size, seed)
    started = time.perf_counter()
    engine, clock = make_sync_engine(url), Clock()
    tables = Base.metadata.tables
    try:
        with Session(engine) as db, patched_clock(clock):
            db.execute(insert(tables["callers"]), _callers(personas, planned))
            db.commit()
            adapter = cast(AsyncSession, BlockingSession(db))
            stats, cases = rollup.SessionStats(adapter, ZONE), CaseStats(adapter, ZONE)
            for offset in range(0, len(planned), batch):
                sessions: list[dict[str, Any]] = []
                rows: list[dict[str, Any]] = []
                for index, session in enumerate(planned[offset : offset + batch], start=offset):
                    plan = synthetic.plan(personas[session.caller_id - 1], session)
                    record = await _run(stats, cases, clock, synthetic.flow, session, plan, f"{index:032x}")
                    sessions.append(record)
                    rows.extend(_interaction_rows(record, plan))
                # Core inserts: the raw rows are not what is measured, so they go in the cheapest way.
                db.execute(insert(tables["sessions"]), sessions)
                db.execute(insert(tables["interactions"]), rows)
                db.commit()  # the rollups' pending counters are upserted here, as after a webhook
            counters = db.scalar(select(func.count()).select_from(StatsCount)) or 0
    finally:
        engine.dispose()
    return Filled(total, len(planned), len(personas), counters, time.perf_counter() - started)


def _callers(personas: list[Persona], planned: list[Planned]) -> list[dict[str, Any]]:
    """Caller rows with random pseudonyms; first and last seen from their sessions."""
    seen: dict[int, list[datetime]] = {}
    for session in planned:
        seen.setdefault(session.caller_id, []).append(session.started_at)
    rng = Random(len(personas))
    return [
        {
            "id": caller_id,
            "pseudonym": f"{rng.getrandbits(256):064x}",
            "language": personas[caller_id - 1].language,
            "first_seen": min(times),
            "last_seen": max(times),
        }
        for caller_id, times in sorted(seen.items())
    ]


async def _run(
    stats: rollup.SessionStats,
    cases: CaseStats,
    clock: Clock,
    flow: FlowDefinition,
    planned: Planned,
    plan: Plan,
    session_id: str,
) -> dict[str, Any]:
    """Count one session step by step as ConversationService does; its row for the bulk insert."""
    session = CallSession(
        id=session_id, caller_id=planned.caller_id, channel=planned.channel, provider_id=session_id,
        flow_id=FLOW_ID, language=None, state={}, step=0, status="completed", started_at=planned.started_at,
    )  # fmt: skip
    for number, step in enumerate(plan.steps):
        clock.now = planned.started_at + timedelta(seconds=step.at)
        for name, value in step.describe.items():
            setattr(session, name, value)  # the survey describes the session before the rollup counts it
        for event in step.events:
            if isinstance(event, LanguageChosen):
                session.language = event.language
        session.step = number
        await stats.step(session, flow, step.events)
    ended = planned.started_at + timedelta(seconds=plan.clock + plan.wait)
    if planned.channel == "voice":
        await stats.ended(session, ended)  # the status callback judges the message still playing
    if plan.topic is not None:
        _count_case(cases, session, plan.topic, Random(planned.seed), clock.now)
    return {
        column: getattr(session, column)
        for column in ("id", "caller_id", "channel", "provider_id", "flow_id", "language", "state", "step")
    } | {
        "status": "completed", "gender": session.gender, "age_band": session.age_band,
        "community": session.community, "started_at": planned.started_at, "updated_at": ended,
        "ended_at": ended, "stats": session.stats,
    }  # fmt: skip


def _count_case(cases: CaseStats, session: CallSession, topic: str, rng: Random, opened: datetime) -> None:
    """The case this session left: opened now, most answered within hours or days, many closed later."""
    case = Case(
        topic=topic, channel=session.channel, language=session.language or "es", gender=session.gender,
        age_band=session.age_band, community=session.community, created_at=opened,
    )  # fmt: skip
    cases.opened(case)
    if rng.random() < 0.8:
        answered = opened + timedelta(hours=rng.lognormvariate(math.log(20), 1.2))
        cases.answered(case, answered)
        if rng.random() < 0.7:
            cases.closed(case, answered + timedelta(days=rng.uniform(1, 30)))


def _interaction_rows(session: dict[str, Any], plan: Plan) -> Iterator[dict[str, Any]]:
    """The raw interactions of a session (not what is measured: they are inserted in bulk)."""
    language, node = None, None
    for number, step in enumerate(plan.steps):
        at = session["started_at"] + timedelta(seconds=step.at)
        rows = _rows(step.events, language, node)
        for seq, row in enumerate(rows, start=1):
            language, node = row["language"], row["node"]
            yield row | {
                "session_id": session["id"], "step": number, "seq": seq, "channel": session["channel"],
                "flow_id": FLOW_ID, "gender": session["gender"], "age_band": session["age_band"],
                "community": session["community"], "created_at": at,
            }  # fmt: skip


@dataclass
class Timing:
    """Latencies of one endpoint at one size, and what its last answer held."""

    samples: list[float]
    body: Any = None
    published: int = 0

    @property
    def median(self) -> float:
        """Median latency in ms."""
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        """95th percentile latency in ms (nearest rank)."""
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


async def timed_get(client: httpx.AsyncClient, path: str, params: dict[str, str], options: Options) -> Timing:
    """Warm up, then time ``options.repeat`` GETs; any answer but 200 stops the benchmark."""
    samples: list[float] = []
    response = None
    for attempt in range(options.warmup + options.repeat):
        # Protected tables are memoised per process; forget them so every request pays the full cost.
        reports.forget_protected()
        started = time.perf_counter()
        response = await client.get(path, params=params)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}: {response.text[:300]}")
        if attempt >= options.warmup:
            samples.append(elapsed)
    body = response.json() if response is not None else None
    return Timing(samples, body, _published(body))


def _published(body: Any) -> int:
    """How many figures in a report are published (a number, not suppressed)."""
    if isinstance(body, dict):
        own = 1 if isinstance(body.get("value"), int) and body.get("suppressed") is False else 0
        return own + sum(_published(value) for value in body.values())
    if isinstance(body, list):
        return sum(_published(value) for value in body)
    return 0


def bench_settings(url: str, data_dir: Path) -> Settings:
    """Settings for the bench: the database, fixed secrets, the shipped flows, no rate limit in the way."""
    extra: dict[str, Any] = {}
    if "stats_requests_per_minute" in Settings.model_fields:
        bounds = [
            m.le for m in Settings.model_fields["stats_requests_per_minute"].metadata if isinstance(m, Le)
        ]
        extra["stats_requests_per_minute"] = bounds[0] if bounds else 1_000_000
    return Settings(
        data_dir=data_dir, database_url=url, secret_key="bench-secret-key-" + "x" * 32,
        contact_key="bench-contact-key-" + "y" * 32, twilio_auth_token="bench-auth-token",  # noqa: S106
        flows_dir=ROOT / "voice_flows", audio_dir=ROOT / "audio", log_level="WARNING", **extra,
    )  # fmt: skip


async def measure(url: str, data_dir: Path, synthetic: Synthetic, options: Options) -> dict[str, Timing]:
    """Each endpoint's latency through the real app, in process."""
    app = create_app(bench_settings(url, data_dir))
    try:
        async with app.state.sessionmaker() as db:
            _, key = await ApiKeyService(db).create("bench", ["stats:read"])
            await db.commit()
        span = {"from": FIRST_DAY.isoformat(), "to": synthetic.last_day.isoformat()}
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as client:
            return {
                name: await timed_get(client, path, span | params, options)
                for name, (path, params) in ENDPOINTS.items()
            }
    finally:
        await app.state.engine.dispose()


async def measure_floor(payload: Any, options: Options) -> Timing:
    """A bare FastAPI endpoint returning a constant JSON body of the same size: the HTTP stack's floor."""
    bare = FastAPI()

    @bare.get("/bare")
    async def constant() -> Any:
        return payload

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bare), base_url="http://bench") as client:
        return await timed_get(client, "/bare", {}, options)


@contextmanager
def fresh_database(base_url: str | None, size: int, folder: Path) -> Iterator[str]:
    """A new, migrated database: a SQLite file in ``folder``, or a new database on the PostgreSQL server."""
    if base_url is None or is_sqlite(base_url):
        url = f"sqlite:///{folder / f'bench_{size}.sqlite3'}"
        upgrade(url)
        yield url
        return
    name = f"rimay_bench_{size}_{uuid.uuid4().hex[:8]}"
    admin = make_sync_engine(base_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class Options:
    """What to run."""

    sizes: tuple[int, ...]
    repeat: int
    warmup: int
    months: int
    batch: int
    seed: int
    database_url: str | None


@dataclass
class SizeResult:
    """One size: its fill and each endpoint's timing."""

    size: int
    filled: Filled
    timings: dict[str, Timing]


async def bench(options: Options) -> tuple[list[SizeResult], Timing]:
    """Fill and measure every size, then the bare floor with a body like the participation report's."""
    flow = load_flows(ROOT / "voice_flows")[FLOW_ID]
    synthetic = Synthetic(flow, options.months)
    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory(prefix="rimay-bench-") as temp:
        for size in options.sizes:
            folder = Path(temp) / str(size)
            folder.mkdir()
            with fresh_database(options.database_url, size, folder) as url:
                filled = await fill(url, synthetic, size, options.seed, options.batch)
                print(f"filled {size:>9,} interactions in {filled.seconds:7.1f} s", file=sys.stderr)
                results.append(SizeResult(size, filled, await measure(url, folder, synthetic, options)))
    floor = await measure_floor(results[0].timings["participation"].body, options)
    return results, floor


def label(size: int) -> str:
    """10000 -> 10k, 1000000 -> 1M."""
    for unit, name in ((1_000_000, "M"), (1_000, "k")):
        if size >= unit and size % unit == 0:
            return f"{size // unit}{name}"
    return str(size)


def report(results: list[SizeResult], floor: Timing, database: str) -> str:
    """The markdown tables: latency per endpoint and size (median, p95, x bare floor), then the fills."""
    first, last = results[0], results[-1]
    ratio = f"{label(last.size)}/{label(first.size)}"
    lines = [
        f"Statistics API latency on {database}: median ms (p95 ms; x bare floor), "
        f"{len(floor.samples)} requests each after warm-up",
        "",
        "| endpoint | " + " | ".join(label(r.size) for r in results) + f" | {ratio} ratio |",
        "|---" * (len(results) + 2) + "|",
    ]
    for name in ENDPOINTS:
        cells = [
            f"{t.median:.1f} ({t.p95:.1f}; x{t.median / floor.median:.1f})"
            for t in (r.timings[name] for r in results)
        ]
        growth = last.timings[name].median / first.timings[name].median
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {growth:.2f} |")
    floor_cell = f"{floor.median:.1f} ({floor.p95:.1f}; x1.0)"
    lines.append("| bare FastAPI floor | " + " | ".join(floor_cell for _ in results) + " | 1.00 |")
    lines += [
        "",
        "| size | interactions | sessions | callers | counter rows | fill s | interactions/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        f = r.filled
        lines.append(
            f"| {label(r.size)} | {f.interactions:,} | {f.sessions:,} | {f.callers:,} | {f.counters:,} "
            f"| {f.seconds:.1f} | {f.interactions / f.seconds:,.0f} |"
        )
    return "\n".join(lines)


def parse(argv: Sequence[str] | None) -> Options:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes", help="interactions per database, comma-separated (default 10000,100000,1000000)"
    )
    parser.add_argument("--quick", action="store_true", help=f"sizes {','.join(map(str, QUICK_SIZES))}")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per endpoint and size")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests first")
    parser.add_argument("--months", type=int, default=12, help="calendar span filled, from 2024-01-01")
    parser.add_argument("--batch", type=int, default=500, help="sessions per transaction while filling")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--database-url", help="a PostgreSQL server URL; a database is created per size")
    args = parser.parse_args(argv)
    sizes: tuple[int, ...] = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if args.sizes:
        try:
            sizes = tuple(int(part) for part in args.sizes.split(","))
        except ValueError:
            parser.error(f"--sizes takes whole numbers separated by commas, not {args.sizes!r}")
    if not sizes or min(sizes) < 1 or args.repeat < 1 or args.warmup < 0 or args.batch < 1:
        parser.error("sizes, --repeat and --batch must be at least 1, --warmup at least 0")
    if not 1 <= args.months <= 12:
        parser.error("--months must be 1 to 12 (the statistics API serves at most a year per query)")
    return Options(sizes, args.repeat, args.warmup, args.months, args.batch, args.seed, args.database_url)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the tables."""
    options = parse(argv)
    database = "PostgreSQL" if options.database_url and not is_sqlite(options.database_url) else "SQLite"
    results, floor = asyncio.run(bench(options))
    print(report(results, floor, database))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
