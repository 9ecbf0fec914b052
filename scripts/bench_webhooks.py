"""Benchmark the webhooks: simulated callers walk the real service under uvicorn, against a bare floor.

Usage: .venv/bin/python scripts/bench_webhooks.py [--quick] [--seconds 20] [--callers 50]
       [--configs sqlite/1,postgres/1,postgres/2]
       [--database-url postgresql://user@host/db | --start-postgres]

Per configuration (database / uvicorn workers) a fresh, migrated database is served on loopback by
``uvicorn --factory app.main:create_app`` (as `rimay serve` runs it). C callers walk the hotline by
signed webhooks, following the action URLs in the TwiML (library, survey, question-line and SMS
journeys, from synthetic numbers +5190xxxxxxx). Then two floors are driven by the same callers under the
same uvicorn settings (scripts/_bench_floors.py): a bare FastAPI app that returns a constant TwiML
document, and the same app committing one write per webhook to the same database. Last, the database
dump, every data file and the server logs are searched for every number used.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from app.flows.loader import load_flows  # noqa: E402
from app.simulator import TwilioSigner  # noqa: E402
from scripts._bench_audio import prompt_audio  # noqa: E402
from scripts._bench_floors import FLOOR_PATH, create_calls_table  # noqa: E402
from scripts._bench_options import Config, Options, parse  # noqa: E402
from scripts._bench_profile import profiling  # noqa: E402
from scripts._webhook_walks import (  # noqa: E402
    Caller,
    Hotline,
    Tally,
    caller_loop,
    cpu_seconds,
    database_cpu_seconds,
    evidence,
    free_port,
    peak_rss_mb,
    privacy_hits,
    serving,
    timed,
    worker_pids,
)
from scripts.bench_stats import fresh_database  # noqa: E402

AUTH_TOKEN = "bench-auth-token-0123456789abcdef"  # noqa: S105 - loopback only, thrown away after the run
ACCOUNT_SID = "AC" + "0" * 32  # the simulator's: recordings it reports are on this account


@dataclass(frozen=True)
class Stats:
    """One app's figures over the measured window (latencies in ms)."""

    steps: int
    per_second: float
    p50: float
    p95: float
    p99: float
    errors: int
    rss_mb: tuple[int, ...]
    cpu_ms: float
    """The workers' CPU time (user and system) per step, over the whole drive."""
    client_ms: float
    """The simulated callers' CPU time per step (this process: signing, HTTP, reading the TwiML)."""
    database_ms: float
    """PostgreSQL's CPU time per step (every postgres process; 0 on SQLite, which runs in the workers)."""


@dataclass(frozen=True)
class Result:
    """One configuration: Rimay, the two floors, what was walked and the privacy scan."""

    config: Config
    rimay: Stats
    floor: Stats
    database_floor: Stats
    tally: Tally
    scanned_bytes: int


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values (0 for none)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def measured(
    pid: int, drive: Coroutine[Any, Any, tuple[Tally, float]], options: Options
) -> tuple[Stats, Tally]:
    """Run a drive against the server ``pid``; its figures, with the CPU time per step and peak memory.

    The CPU time is split three ways (workers, callers, PostgreSQL) because all three share this
    machine's cores: what the callers and the database use is not there for the workers.
    """
    before = (cpu_seconds(pid), time.process_time(), database_cpu_seconds())
    tally, started = asyncio.run(drive)
    after = (cpu_seconds(pid), time.process_time(), database_cpu_seconds())
    steps = len(tally.samples) or 1
    used = [(end - start) * 1000 / steps for start, end in zip(before, after, strict=True)]
    cpu_ms = (used[0], used[1], used[2])
    return summarize(tally, started, options, peak_rss_mb(pid), cpu_ms), tally


def summarize(
    tally: Tally,
    started: float,
    options: Options,
    rss_mb: tuple[int, ...],
    cpu_ms: tuple[float, float, float],
) -> Stats:
    """Steps finished inside the measured window (after the warm-up), their rate and latency."""
    begin = started + options.warmup
    end = begin + options.seconds
    window = sorted(latency * 1000 for finished, latency in tally.samples if begin <= finished <= end)
    return Stats(
        steps=len(window), per_second=len(window) / options.seconds, p50=percentile(window, 0.50),
        p95=percentile(window, 0.95), p99=percentile(window, 0.99), errors=tally.errors, rss_mb=rss_mb,
        cpu_ms=cpu_ms[0], client_ms=cpu_ms[1], database_ms=cpu_ms[2],
    )  # fmt: skip


def service_env(url: str, data_dir: Path, base_url: str) -> dict[str, str]:
    """The environment of `rimay serve`: the database, fixed secrets, the shipped flows, INFO logs."""
    # Only the webhook deadline and admission settings pass through (a run may change them to measure).
    kept = {"RIMAY_WEBHOOK_DEADLINE_SECONDS", "RIMAY_WEBHOOK_CONCURRENCY", "RIMAY_WEBHOOK_QUEUE_SECONDS"}
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RIMAY_") or k in kept}
    metrics = data_dir / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    return environment | {
        "PYTHONPATH": str(ROOT), "RIMAY_DATA_DIR": str(data_dir), "RIMAY_DATABASE_URL": url,
        "RIMAY_PUBLIC_BASE_URL": base_url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "RIMAY_LOG_LEVEL": "INFO",
        "RIMAY_SECRET_KEY": "bench-secret-key-" + "x" * 32, "RIMAY_CONTACT_KEY": "bench-contact-" + "y" * 32,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "RIMAY_FLOWS_DIR": str(ROOT / "voice_flows"),
        "RIMAY_AUDIO_DIR": str(ROOT / "audio"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }  # fmt: skip


@asynccontextmanager
async def clients(base_url: str, count: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """A client with one keep-alive connection per caller, as Twilio's many fetchers hold.

    One shared pool of C connections costs the client milliseconds of CPU per request at C=50
    (httpcore scans its pool), which would make the client, not the server, the bottleneck.
    """
    async with AsyncExitStack() as stack:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        yield [
            await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits))
            for _ in range(count)
        ]


async def drive_rimay(base_url: str, hotline: Hotline, options: Options) -> tuple[Tally, float]:
    """C callers walk the hotline until the warm-up and the measured time are over."""
    tally = Tally()
    started = time.perf_counter()
    until = started + options.warmup + options.seconds
    async with clients(base_url, options.callers) as https:
        callers = [Caller(index, options.seed) for index in range(options.callers)]
        await asyncio.gather(
            *(
                caller_loop(http, hotline, caller, tally, until)
                for http, caller in zip(https, callers, strict=True)
            )
        )
    return tally, started


async def drive_floor(base_url: str, signer: TwilioSigner, options: Options) -> tuple[Tally, float]:
    """The same number of callers post signed voice steps to a floor as fast as it answers, each
    caller on her own call (the database floor writes one row per call)."""
    tally = Tally()
    started = time.perf_counter()
    until = started + options.warmup + options.seconds

    async def loop(index: int, http: httpx.AsyncClient) -> None:
        params = {
            "CallSid": f"CA{index:032x}",
            "AccountSid": ACCOUNT_SID,
            "Digits": "1",
            "To": "+15005550006",
        }
        while time.perf_counter() < until:
            headers = signer.headers(signer.public(FLOOR_PATH), params)  # the caller's signing cost, as above
            response = await timed(tally, "floor", http.post(FLOOR_PATH, data=params, headers=headers))
            if response is not None and "<Gather" not in response.text:
                tally.fail("floor: not the constant TwiML")

    async with clients(base_url, options.callers) as https:
        await asyncio.gather(*(loop(index, http) for index, http in enumerate(https)))
    return tally, started


def drive_floors(
    url: str, env: dict[str, str], config: Config, options: Options, folder: Path
) -> list[Stats]:
    """The bare floor, then the database floor (on the configuration's database), as Rimay was served."""
    create_calls_table(url)
    figures = []
    for name in ("floor", "database_floor"):
        with serving(
            f"scripts._bench_floors:{name}_app", config.workers, env, folder / f"{name}.log", free_port()
        ) as served:
            signer = TwilioSigner(AUTH_TOKEN, served.base_url)
            stats, _ = measured(served.process.pid, drive_floor(served.base_url, signer, options), options)
            figures.append(stats)
    return figures


def run_config(config: Config, options: Options, server_url: str | None, folder: Path) -> Result:
    """Serve a fresh database, drive Rimay, then the floors, then scan for numbers."""
    flows = load_flows(ROOT / "voice_flows")
    data_dir = folder / "data"
    if options.audio is not None:
        data_dir.mkdir(parents=True)
        (data_dir / "audio").symlink_to(options.audio, target_is_directory=True)
    with fresh_database(server_url if config.database == "postgres" else None, config.workers, folder) as url:
        port = free_port()
        env = service_env(url, data_dir, f"http://127.0.0.1:{port}")
        with serving("app.main:create_app", config.workers, env, folder / "rimay.log", port) as served:
            hotline = Hotline.of(TwilioSigner(AUTH_TOKEN, served.base_url), flows, "hotline")
            workers = worker_pids(served.process.pid)
            with profiling(workers, options.warmup, options.seconds, options.profile, config.label):
                rimay, tally = measured(
                    served.process.pid, drive_rimay(served.base_url, hotline, options), options
                )
        floor, database_floor = drive_floors(url, env, config, options, folder)
        blobs = evidence(url, folder)
    found = privacy_hits(tally.numbers, blobs)
    if found:
        raise SystemExit(
            f"privacy scan: {len(tally.numbers)} numbers, {len(found)} FOUND in {', '.join(found)}"
        )
    if config.database == "sqlite":  # SQLite runs in the workers; a postgres process is not ours
        rimay, database_floor = (replace(stats, database_ms=0.0) for stats in (rimay, database_floor))
    floor = replace(floor, database_ms=0.0)  # the bare floor has no database
    return Result(config, rimay, floor, database_floor, tally, sum(len(blob) for blob in blobs.values()))


def _row(name: str, stats: Stats) -> str:
    rss = " / ".join(str(mb) for mb in stats.rss_mb) or "?"
    return (
        f"| {name} | {stats.per_second:,.1f} | {stats.p50:.1f} | {stats.p95:.1f} | {stats.p99:.1f} "
        f"| {stats.errors} | {stats.cpu_ms:.2f} | {stats.client_ms:.2f} | {stats.database_ms:.2f} | {rss} |"
    )


def ratios(app: Stats, floor: Stats) -> str:
    """Throughput and p99 of an app as a share and a multiple of a floor's."""
    throughput = app.per_second / floor.per_second if floor.per_second else 0.0
    p99 = app.p99 / floor.p99 if floor.p99 else 0.0
    return f"throughput {throughput:.2f}, p99 {p99:.2f}x"


def report(results: Sequence[Result], options: Options) -> str:
    """A markdown table per configuration, the ratios to the floors, what was walked and the scan."""
    lines: list[str] = []
    for result in results:
        rimay, floor, database_floor, tally = result.rimay, result.floor, result.database_floor, result.tally
        walks = ", ".join(f"{name} {count}" for name, count in sorted(tally.walks.items()))
        lines += [
            f"{result.config.label}: {options.callers} callers, {options.seconds:g} s measured "
            f"after {options.warmup:g} s warm-up",
            "",
            "| app | steps/s | p50 ms | p95 ms | p99 ms | errors | CPU ms/step: workers | callers "
            "| PostgreSQL | peak RSS per worker MB |",
            "|---|---|---|---|---|---|---|---|---|---|",
            _row("Rimay", rimay),
            _row("bare FastAPI floor", floor),
            _row("database floor (one committed write)", database_floor),
            "",
            f"ratio to the floor: {ratios(rimay, floor)}",
            f"ratio to the database floor: {ratios(rimay, database_floor)}",
            f"database floor to the floor: {ratios(database_floor, floor)}",
            f"walks: {walks}; unrecognised screens: {tally.unrecognised}",
            *(f"error: {sample}" for sample in tally.error_samples),
            f"privacy scan: {len(tally.numbers)} numbers, 0 found "
            f"({result.scanned_bytes / 1e6:.1f} MB of database dump, data files and server logs)",
            "",
        ]
    return "\n".join(lines).rstrip()


def bench(options: Options) -> list[Result]:
    """Run every configuration (starting a throwaway PostgreSQL if asked)."""
    server_url, stop = options.database_url, None
    if options.start_postgres:
        from tests.pg import find_postgres, start_postgres

        binaries = find_postgres()
        if binaries is None:
            raise SystemExit("--start-postgres: no PostgreSQL binaries under /usr/lib/postgresql")
        server = start_postgres(binaries, Path(tempfile.gettempdir()))
        server_url, stop = server.url_for("postgres"), server.stop
    audio_folder = Path(tempfile.mkdtemp(prefix="rimay-bench-audio-"))
    try:
        results = []
        options = replace(options, audio=prompt_audio(options.audio, ROOT, audio_folder))
        for config in options.configs:
            with tempfile.TemporaryDirectory(prefix="rimay-bench-webhooks-") as temp:
                try:
                    results.append(run_config(config, options, server_url, Path(temp)))
                finally:
                    keep_logs(Path(temp), config, options.keep)
                print(f"{config.label} done", file=sys.stderr)
        return results
    finally:
        shutil.rmtree(audio_folder, ignore_errors=True)
        if stop is not None:
            stop()


def keep_logs(folder: Path, config: Config, keep: Path | None) -> None:
    """Copy the servers' logs (e.g. to see what an error was) as <database>-<workers>-<app>.log."""
    if keep is None:
        return
    keep.mkdir(parents=True, exist_ok=True)
    for log in folder.glob("*.log"):
        shutil.copyfile(log, keep / f"{config.database}-{config.workers}-{log.name}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the tables."""
    options = parse(argv)
    print(report(bench(options), options))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
