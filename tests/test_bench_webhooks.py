"""The webhook benchmark: real uvicorn, signed walks, the bare floor, and the privacy scan after load."""

from __future__ import annotations

import os
import re
from pathlib import Path
from random import Random

import httpx
import pytest
from sqlalchemy import select

from app.db.engine import make_sync_engine
from app.flows.model import FlowDefinition
from app.simulator import Screen, TwilioSigner, Verb
from scripts._bench_floors import CALLS, constant_twiml, create_calls_table, database_floor_app, floor_app
from scripts._bench_options import Config, parse
from scripts._webhook_walks import Chooser, Hotline, Tally, cpu_seconds, peak_rss_mb, privacy_hits
from scripts.bench_webhooks import main, percentile

NUMBER = "+51901234567"


def test_a_tiny_run_prints_the_table_with_no_error_and_no_number_found(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, audio_data_dir: Path
) -> None:
    # SQLite queues concurrent writers; on a loaded CI machine a step may pass the 1.5 s outage deadline
    # and count as an error. This run checks the machinery, so the deadline is out of its way (and the
    # queue's wait shorter, so that both stay within Twilio's 15 s).
    monkeypatch.setenv("RIMAY_WEBHOOK_DEADLINE_SECONDS", "10")
    monkeypatch.setenv("RIMAY_WEBHOOK_QUEUE_SECONDS", "3")
    audio = audio_data_dir / "audio"  # the drafts the tests built once, instead of building them again
    argv = ["--seconds", "3", "--callers", "4", "--warmup", "1", "--keep", str(tmp_path)]
    argv += ["--profile", str(tmp_path / "profile")]
    assert main([*argv, *(["--audio", str(audio)] if audio.is_dir() else [])]) == 0

    printed = capsys.readouterr().out
    header = (
        "| app | steps/s | p50 ms | p95 ms | p99 ms | errors | CPU ms/step: workers | callers | PostgreSQL "
        "| peak RSS per worker MB |"
    )
    assert header in printed
    row = (
        r"\| ([\d,]+\.\d) \| (\d+\.\d) \| \d+\.\d \| (\d+\.\d) \| (\d+) \| (\d+\.\d\d) \| (\d+\.\d\d) "
        r"\| (\d+\.\d\d) \| (\d+) \|"
    )
    rimay = re.search(rf"^\| Rimay {row}$", printed, re.MULTILINE)
    floor = re.search(rf"^\| bare FastAPI floor {row}$", printed, re.MULTILINE)
    database_floor = re.search(rf"^\| database floor \(one committed write\) {row}$", printed, re.MULTILINE)
    assert rimay is not None, printed
    assert floor is not None, printed
    assert database_floor is not None, printed
    for app in (rimay, floor, database_floor):
        assert float(app[1].replace(",", "")) > 0
        assert app[4] == "0", printed  # no error on any of the three
    assert float(rimay[5]) > 0  # the worker's CPU time per step, read from /proc
    assert float(rimay[6]) > 0  # the callers' (this process)
    assert float(rimay[7]) == 0  # no PostgreSQL process served SQLite
    assert int(rimay[8]) > 50  # the worker's peak RSS in MB
    # py-spy sampled the worker over the measured time: a flame graph of the real service's own code.
    (graph,) = (tmp_path / "profile").glob("sqlite-1-*.svg")
    assert "app/voice/endpoints.py" in graph.read_text()
    # As deployed, every prompt had audio: nothing was said in Spanish for want of a Quechua file.
    assert "no audio for flow" not in (tmp_path / "sqlite-1-rimay.log").read_text()
    for ratio in ("ratio to the floor", "ratio to the database floor", "database floor to the floor"):
        assert re.search(rf"^{ratio}: throughput \d+\.\d\d, p99 \d+\.\d\dx$", printed, re.MULTILINE), ratio
    walks = re.search(
        r"^walks: library (\d+), questions (\d+), sms (\d+), survey (\d+)", printed, re.MULTILINE
    )
    assert walks is not None, printed
    assert sum(map(int, walks.groups())) > 0
    assert "error:" not in printed
    assert re.search(r"^privacy scan: [1-9]\d* numbers, 0 found \(\d+\.\d MB", printed, re.MULTILINE)
    # The log scanned is the service's real access log, with every kind of webhook in it.
    log = (tmp_path / "sqlite-1-rimay.log").read_text()
    for webhook in ("/twilio/voice ", "/twilio/voice/sessions/", "/twilio/voice/status", "/twilio/sms "):
        assert f"POST {webhook}" in log, webhook
    for floor_log in ("sqlite-1-floor.log", "sqlite-1-database_floor.log"):
        assert "POST /twilio/voice/sessions/floor/steps/1" in (tmp_path / floor_log).read_text()


@pytest.mark.parametrize(
    "spelling",
    [NUMBER, NUMBER[1:], NUMBER[3:], "%2B" + NUMBER[1:], "901 234 567", "901-234-567"],
)
def test_the_privacy_scan_finds_a_number_in_every_spelling(spelling: str) -> None:
    blob = f"INFO webhook From={spelling}&To=x".encode()

    assert privacy_hits({NUMBER}, {"server.log": blob, "clean": b"pseudonym 9a0f12"}) == ["server.log (1)"]


def test_the_privacy_scan_passes_other_digits() -> None:
    blobs = {"dump": b"901234568 +51901234566 90123456 901 234 56 8"}

    assert privacy_hits({NUMBER}, blobs) == []


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]

    assert (percentile(values, 0.5), percentile(values, 0.99), percentile([], 0.5)) == (50.0, 99.0, 0.0)


async def test_the_floor_answers_every_post_with_the_same_twiml() -> None:
    transport = httpx.ASGITransport(app=floor_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://floor") as client:
        first = await client.post("/twilio/voice", data={"Digits": "1"})
        second = await client.post("/twilio/voice/sessions/x/steps/3")

    assert first.status_code == second.status_code == 200
    assert first.text == second.text
    assert "<Gather" in first.text
    assert first.headers["content-type"].startswith("application/xml")


async def test_the_database_floor_commits_one_write_per_webhook_for_its_call(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_calls_table(database_url)
    create_calls_table(database_url)  # already there: left as it is
    monkeypatch.setenv("RIMAY_DATABASE_URL", database_url)
    app = database_floor_app()
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://floor") as client,
    ):
        answers = [await client.post("/twilio/voice", data={"CallSid": sid}) for sid in ("CA1", "CA2", "CA1")]
        missing = await client.post("/twilio/voice", data={"Digits": "1"})
        empty = await client.post("/twilio/voice", data={"CallSid": ""})

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert answers[0].text == answers[2].text == constant_twiml()
    assert (missing.status_code, empty.status_code) == (400, 400)
    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(CALLS).order_by(CALLS.c.call_sid)).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [("CA1", 2), ("CA2", 1)]


def test_a_single_process_reports_its_own_peak_rss_and_cpu_time() -> None:
    [mb] = peak_rss_mb(os.getpid())
    before = cpu_seconds(os.getpid())
    sum(range(3_000_000))  # some CPU work for the clock to see

    assert mb > 10
    assert cpu_seconds(os.getpid()) > before


def test_callers_recognise_the_node_behind_a_screen(flows: dict[str, FlowDefinition]) -> None:
    hotline = Hotline.of(TwilioSigner("token", "http://bench"), flows, "hotline")
    main_menu = flows["hotline"].node("main").prompt["es"]
    screen = Screen(prompts=[Verb("say", "Esa opción no es válida."), Verb("say", main_menu)])

    assert hotline.node_of(screen) == "main"
    assert hotline.node_of(Screen(prompts=[Verb("say", "no such prompt")])) is None
    chooser = Chooser(hotline, "survey", Random(1))
    assert chooser.key("language") == "1"
    assert chooser.key("main") == "2"  # the survey's key on the posters
    assert chooser.key("main") is None  # back at the main menu: she hangs up


def test_callers_hear_both_apologies_as_errors(flows: dict[str, FlowDefinition]) -> None:
    hotline = Hotline.of(TwilioSigner("token", "http://bench"), flows, "hotline")
    outage = Verb("play", "[audio]", "http://bench/audio/qu/system/outage.mp3")
    bug = Verb("say", flows["hotline"].system["error"]["es"])
    menu = Verb("say", flows["hotline"].node("main").prompt["es"], None)

    assert [hotline.is_apology(verb) for verb in (outage, bug, menu)] == [True, True, False]


def test_a_tally_keeps_only_the_first_errors() -> None:
    tally = Tally()
    for index in range(8):
        tally.fail(f"voice answered {500 + index}")

    assert tally.errors == 8
    assert tally.error_samples == [f"voice answered {500 + index}" for index in range(5)]


def test_options_and_their_defaults() -> None:
    assert parse([]).configs == (Config("sqlite", 1),)
    default = parse([])
    assert (default.seconds, default.callers, default.warmup) == (20, 50, 2)
    quick = parse(["--quick"])
    assert (quick.seconds, quick.callers, quick.warmup) == (5, 10, 1)
    with_pg = parse(["--database-url", "postgresql://postgres@127.0.0.1/postgres"])
    assert [config.label for config in with_pg.configs] == ["sqlite/1", "postgres/1", "postgres/2"]
    assert parse(["--start-postgres", "--configs", "postgres/2"]).configs == (Config("postgres", 2),)


@pytest.mark.parametrize(
    "argv",
    [
        ["--seconds", "0"],
        ["--warmup", "-1"],
        ["--callers", "0"],
        ["--configs", "mysql/1"],
        ["--configs", "sqlite/0"],
        ["--configs", "sqlite/2"],
        ["--configs", "postgres/1"],
        ["--database-url", "sqlite:///x.db"],
        ["--database-url", "postgresql://h/db", "--start-postgres"],
    ],
)
def test_bad_options_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)

    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err
