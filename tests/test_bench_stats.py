"""The statistics benchmark: its synthetic data goes through the rollups and every endpoint is timed."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from scripts.bench_stats import ENDPOINTS, Options, bench, main, parse, report, timed_get

CELL = r"\d+\.\d \(\d+\.\d; x\d+\.\d\)"


def _tiny(sizes: tuple[int, ...]) -> Options:
    """A month of data so even a few hundred interactions make cells large enough to publish."""
    return Options(sizes=sizes, repeat=3, warmup=1, months=1, batch=50, seed=6, database_url=None)


def _totals(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The participation rows over everybody (gender and channel both null) in each period."""
    rows: list[dict[str, Any]] = body["rows"]
    return [row for row in rows if row["group"]["gender"] is None and row["group"]["channel"] is None]


async def test_bench_fills_through_the_rollups_andtimed_gets_every_endpoint() -> None:
    results, floor = await bench(_tiny((300, 600)))

    assert [result.size for result in results] == [300, 600]
    for result in results:
        assert result.filled.interactions >= result.size
        assert result.filled.counters > 0
        for timing in result.timings.values():
            assert len(timing.samples) == 3
            assert all(sample > 0 for sample in timing.samples)
    larger = results[-1]
    totals = _totals(larger.timings["participation"].body)
    assert [row["group"]["period"] for row in totals] == ["2024-01-01"]
    # The API's figures are the fill's own: every session and caller, counted by the rollups.
    assert totals[0]["sessions"] == {"value": larger.filled.sessions, "suppressed": False}
    assert totals[0]["participants"] == {"value": larger.filled.callers, "suppressed": False}
    assert larger.timings["participation"].published > 0
    for name in ("library", "survey", "cases"):  # too few at this size to publish, but every table is there
        assert larger.timings[name].body["rows"], name
    assert larger.filled.callers < larger.filled.sessions  # some callers came back

    table = report(results, floor, "SQLite")
    assert "| endpoint | 300 | 600 | 600/300 ratio |" in table
    for name in ENDPOINTS:
        assert re.search(rf"^\| {name} \| {CELL} \| {CELL} \| \d+\.\d\d \|$", table, re.MULTILINE), name
    assert re.search(rf"^\| bare FastAPI floor \| {CELL} \| {CELL} \| 1\.00 \|$", table, re.MULTILINE)
    fill_row = r"^\| 600 \| [\d,]+ \| [\d,]+ \| [\d,]+ \| [\d,]+ \| \d+\.\d \| [\d,]+ \|$"
    assert re.search(fill_row, table, re.MULTILINE)


def test_main_prints_the_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--sizes", "200", "--repeat", "1", "--warmup", "0", "--months", "1"]) == 0

    printed = capsys.readouterr().out
    assert "| endpoint | 200 | 200/200 ratio |" in printed
    for name in ENDPOINTS:
        assert re.search(rf"^\| {name} \| {CELL} \| 1\.00 \|$", printed, re.MULTILINE), name
    assert "| size | interactions | sessions | callers | counter rows | fill s | interactions/s |" in printed


def test_quick_and_default_sizes() -> None:
    assert parse([]).sizes == (10_000, 100_000, 1_000_000)
    assert parse(["--quick"]).sizes == (2_000, 20_000)
    assert parse(["--sizes", "300,600"]).sizes == (300, 600)


async def test_an_endpoint_that_does_not_answer_200_stops_the_bench() -> None:
    app = FastAPI()
    options = _tiny((1,))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        with pytest.raises(SystemExit, match="GET /api/v1/stats/participation answered 404"):
            await timed_get(client, "/api/v1/stats/participation", {}, options)


@pytest.mark.parametrize(
    "argv",
    [
        ["--sizes", "ten,20"],
        ["--sizes", "0"],
        ["--sizes", "100,-5"],
        ["--repeat", "0"],
        ["--warmup", "-1"],
        ["--batch", "0"],
        ["--months", "0"],
        ["--months", "13"],
    ],
)
def test_bad_options_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)

    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err
