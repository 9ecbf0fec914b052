"""The webhook benchmark's command line: which configurations to run, for how long, with how many callers."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.db.engine import is_sqlite

QUICK = {"seconds": 5, "callers": 10, "warmup": 1}


@dataclass(frozen=True)
class Config:
    """One configuration: the database kind and the number of uvicorn workers."""

    database: str
    workers: int

    @property
    def label(self) -> str:
        """e.g. postgres/2."""
        return f"{self.database}/{self.workers}"


@dataclass(frozen=True)
class Options:
    """What to run."""

    configs: tuple[Config, ...]
    seconds: float
    warmup: float
    callers: int
    seed: int
    database_url: str | None
    start_postgres: bool
    keep: Path | None = None
    audio: Path | None = None
    profile: Path | None = None


def parse(argv: Sequence[str] | None) -> Options:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--configs", help="database/workers, comma-separated (default sqlite/1, and "
                        "postgres/1,postgres/2 with a PostgreSQL)")  # fmt: skip
    parser.add_argument("--seconds", type=float, help="measured time per app and configuration (default 20)")
    parser.add_argument("--warmup", type=float, help="unmeasured seconds first (default 2)")
    parser.add_argument("--callers", type=int, help="concurrent simulated callers (default 50)")
    parser.add_argument("--quick", action="store_true", help="5 s, 10 callers, 1 s warm-up")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--database-url", help="a PostgreSQL server URL; a database is created per configuration"
    )
    parser.add_argument("--start-postgres", action="store_true", help="start a throwaway PostgreSQL")
    parser.add_argument("--keep", type=Path, help="copy the server logs into this folder")
    parser.add_argument("--profile", type=Path, help="py-spy flame graphs of each Rimay worker over the "
                        "measured time, as SVG files in this folder")  # fmt: skip
    parser.add_argument("--audio", type=Path, help="built prompt audio to serve (a data dir's audio folder); "
                        "default: drafts built once with espeak-ng")  # fmt: skip
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else {"seconds": 20, "callers": 50, "warmup": 2}
    seconds = defaults["seconds"] if args.seconds is None else args.seconds
    warmup = defaults["warmup"] if args.warmup is None else args.warmup
    callers = defaults["callers"] if args.callers is None else args.callers
    if seconds <= 0 or warmup < 0 or callers < 1:
        parser.error("--seconds must be above 0, --warmup at least 0, --callers at least 1")
    if args.database_url and (args.start_postgres or is_sqlite(args.database_url)):
        parser.error("--database-url takes a PostgreSQL server URL, without --start-postgres")
    postgres = bool(args.database_url or args.start_postgres)
    configs = _configs(parser, args.configs or ("sqlite/1,postgres/1,postgres/2" if postgres else "sqlite/1"))
    if not postgres and any(config.database == "postgres" for config in configs):
        parser.error("postgres configurations need --database-url or --start-postgres")
    return Options(
        configs, seconds, warmup, callers, args.seed, args.database_url, args.start_postgres, args.keep,
        args.audio, args.profile,
    )  # fmt: skip


def _configs(parser: argparse.ArgumentParser, text: str) -> tuple[Config, ...]:
    configs = []
    for part in text.split(","):
        match = re.fullmatch(r"(sqlite|postgres)/([1-9]\d?)", part.strip())
        if match is None:
            parser.error(f"--configs takes database/workers like sqlite/1 or postgres/2, not {part!r}")
        if match[1] == "sqlite" and match[2] != "1":
            parser.error("SQLite is served by one worker only (use postgres/N for more)")
        configs.append(Config(match[1], int(match[2])))
    return tuple(configs)
