"""The webhook benchmark's parts: simulated callers (signed voice walks, SMS chats), uvicorn, privacy scan.

Each caller recognises the node behind a screen from its prompt text and answers it as a person
would (a menu key, a survey answer, a recording), so the walks follow the real TwiML wherever the
flow and the caller's stored state lead them.
"""

# ruff: noqa: S311  (seeded random choices make the walks the same on every run)

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Awaitable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

import httpx
from sqlalchemy.engine import make_url

from app.db.engine import is_sqlite
from app.flows.model import (
    ArticleNode,
    CaseTopicNode,
    Choice,
    ConsentNode,
    FlowDefinition,
    LanguageMenuNode,
    MenuNode,
    ProfileCheckNode,
    QuestionNode,
    RecordNode,
    RecordReviewNode,
    ReplyChoiceNode,
    ResumeNode,
    SubscribeNode,
)
from app.simulator import Call, Screen, TextPhone, TwilioSigner, Verb, parse_messages, parse_twiml
from app.webhooks.outage import AUDIO_FLOW, AUDIO_KEY, SMS_TEXT, VOICE_TEXT

# Main-menu keys are printed on posters (hotline.yaml): 1 library, 2 survey, 3 ask a question.
JOURNEYS: dict[str, str | None] = {"library": "1", "survey": "2", "questions": "3", "sms": None}
WEIGHTS = (4, 3, 2, 1)
SMS_SCRIPT = ("hola", "1", "1", "1", "2", "0", "MENU", "2")
MAX_STEPS = 40  # a walk longer than this is a caller stuck in a loop: hang up
MAX_ARTICLES = 3
ERROR_SAMPLES = 5
START_TIMEOUT = 60.0


@dataclass
class Tally:
    """Every webhook's finish time and latency (seconds), the errors, and what was walked."""

    samples: list[tuple[float, float]] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    walks: Counter[str] = field(default_factory=Counter)
    unrecognised: int = 0
    numbers: set[str] = field(default_factory=set)

    def fail(self, what: str) -> None:
        """Count an error and keep the first few descriptions (paths and statuses, never numbers)."""
        self.errors += 1
        if len(self.error_samples) < ERROR_SAMPLES:
            self.error_samples.append(what)


@dataclass(frozen=True)
class Hotline:
    """What the callers need to know of the service: the signer, the flows, and each prompt's node."""

    signer: TwilioSigner
    flows: dict[str, FlowDefinition]
    flow: FlowDefinition
    nodes_by_text: dict[str, str]
    apologies: frozenset[str]

    @classmethod
    def of(cls, signer: TwilioSigner, flows: dict[str, FlowDefinition], flow_id: str) -> Hotline:
        """Index every node's prompt text (each language) and the apology texts."""
        flow = flows[flow_id]
        by_text = {text: node_id for node_id, node in flow.nodes.items() for text in node.prompt.values()}
        # The flow's apology (a bug), and the outage one (the database, or the 1.5 s webhook deadline).
        apologies = {*flow.system["error"].values(), *VOICE_TEXT.values(), SMS_TEXT}
        return cls(signer, flows, flow, by_text, frozenset(apologies))

    def is_apology(self, verb: Verb) -> bool:
        """Whether a prompt is an apology: said, or the shipped outage recording played."""
        outage_audio = f"/{AUDIO_FLOW}/{AUDIO_KEY}."
        return verb.text in self.apologies or (verb.url is not None and outage_audio in verb.url)

    def node_of(self, screen: Screen) -> str | None:
        """The node waiting for input: the last prompt on the screen that is a node's own."""
        for verb in reversed(screen.prompts):
            if verb.text in self.nodes_by_text:
                return self.nodes_by_text[verb.text]
        return None


@dataclass(frozen=True)
class Walk:
    """One walk: the journey, the phone it comes from, and when the benchmark stops taking steps."""

    journey: str
    number: str
    until: float


class Chooser:
    """A caller's answers on one walk, by the node she hears."""

    def __init__(self, hotline: Hotline, journey: str, rng: Random) -> None:
        self.flow, self.journey, self.rng = hotline.flow, journey, rng
        self.articles = 0
        self.main_visits = 0

    def key(self, node_id: str) -> str | None:
        """The key pressed (or recording ended with), or None to hang up."""
        node, rng = self.flow.node(node_id), self.rng
        answer: str | None = None
        if isinstance(node, MenuNode):
            answer = self._menu(node_id, node)
        elif isinstance(node, ArticleNode):
            self.articles += 1
            answer = "2" if node.next and self.articles < MAX_ARTICLES else None
        elif isinstance(node, QuestionNode):
            answer = self._answer(node)
        elif isinstance(node, CaseTopicNode):
            answer = rng.choice(sorted(node.topics))
        elif isinstance(node, SubscribeNode):
            answer = "1" if rng.random() < 0.3 else "0"  # news by SMS: her number is stored, encrypted
        elif isinstance(node, ReplyChoiceNode):
            answer = "2" if rng.random() < 0.3 else "1"  # the answer by SMS: likewise
        elif isinstance(node, ProfileCheckNode):
            answer = rng.choice("12")
        elif isinstance(node, LanguageMenuNode | ResumeNode | ConsentNode | RecordReviewNode):
            answer = "1"  # Spanish (its audio is what every deployment has), continue, start, keep
        elif isinstance(node, RecordNode):
            answer = "#"
        return answer

    def _menu(self, node_id: str, node: MenuNode) -> str | None:
        if node_id != self.flow.main:
            return self.rng.choice(sorted(node.options))
        self.main_visits += 1
        # Back at the main menu after the journey: she has what she called for.
        return JOURNEYS[self.journey] if self.main_visits == 1 else None

    def _answer(self, node: QuestionNode) -> str:
        if node.open is not None:
            return self.rng.choice("#*")  # a spoken answer, or skipped
        if node.number is not None:
            return str(self.rng.randint(node.number.min, node.number.max))
        choices = self.flow.scales[node.choices] if isinstance(node.choices, str) else node.choices or {}
        # Mostly answers that carry on (under-18s leave the survey early): a few of those too.
        onward = [key for key, choice in choices.items() if _carries_on(choice)] or list(choices)
        return self.rng.choice(sorted(choices) if self.rng.random() < 0.05 else onward)


def _carries_on(choice: Choice) -> bool:
    return choice.next is None


async def timed(tally: Tally, what: str, request: Awaitable[httpx.Response]) -> httpx.Response | None:
    """Await one webhook, record its latency; a transport error or a status >= 400 is an error."""
    started = time.perf_counter()
    try:
        response = await request
    except httpx.HTTPError as error:
        tally.fail(f"{what}: {type(error).__name__}")
        return None
    finished = time.perf_counter()
    tally.samples.append((finished, finished - started))
    if response.status_code >= 400:
        tally.fail(f"{what} answered {response.status_code}")
        return None
    return response


def voice_screen(hotline: Hotline, tally: Tally, response: httpx.Response | None) -> Screen | None:
    """The screen a voice answer holds; an apology or unreadable TwiML is an error."""
    if response is None:
        return None
    try:
        screen = parse_twiml(response.text, hotline.flows)
    except ET.ParseError:
        tally.fail(f"{response.request.url.path}: not TwiML")
        return None
    if any(hotline.is_apology(verb) for verb in screen.prompts):
        tally.fail(f"{response.request.url.path}: the apology")
        return None
    return screen


async def voice_walk(
    client: httpx.AsyncClient, hotline: Hotline, walk: Walk, rng: Random, tally: Tally
) -> None:
    """One call: ring, answer each screen as the journey's caller would, hang up, status callback."""
    call = Call(client=client, signer=hotline.signer, flows=hotline.flows, caller=walk.number)
    chooser = Chooser(hotline, walk.journey, rng)
    response = await timed(tally, "voice", call.post("/twilio/voice", {"CallStatus": "ringing"}))
    for _ in range(MAX_STEPS):
        screen = voice_screen(hotline, tally, response)
        action = screen and (screen.gather_action or screen.record_action)
        if screen is None or screen.hangup or not action or time.perf_counter() >= walk.until:
            break
        node_id = hotline.node_of(screen)
        key = chooser.key(node_id) if node_id else None
        if key is None:
            tally.unrecognised += node_id is None
            break
        extra = call.recorded(key) if screen.record_action else {"Digits": key}
        posted = call.post(action, {**extra, "CallStatus": "in-progress"})
        response = await timed(tally, "voice step", posted)
    duration = str(int(time.monotonic() - call.started))
    status = call.post("/twilio/voice/status", {"CallStatus": "completed", "CallDuration": duration})
    await timed(tally, "voice status", status)


async def sms_walk(client: httpx.AsyncClient, hotline: Hotline, walk: Walk, tally: Tally) -> None:
    """A short SMS chat: greeting, language, the library, the survey's start; each reply checked."""
    phone = TextPhone(client=client, signer=hotline.signer, sender=walk.number)
    for body in SMS_SCRIPT:
        if time.perf_counter() >= walk.until:
            return
        response = await timed(tally, "sms", phone.send(body))
        if response is None:
            return
        try:
            replies = parse_messages(response.text)
        except ET.ParseError:
            tally.fail("sms: not TwiML")
            return
        if any(apology in reply for reply in replies for apology in hotline.apologies):
            tally.fail("sms: the apology")
            return


@dataclass
class Caller:
    """One simulated person: her own random stream and phone number; a new phone every few walks."""

    index: int
    seed: int
    rng: Random = field(init=False)
    number: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.rng = Random(self.seed * 100_003 + self.index)

    def next_number(self, tally: Tally) -> str:
        """A fresh synthetic Peruvian mobile number (+5190 and seven digits), never used before."""
        while True:
            number = f"+5190{self.rng.randrange(10_000_000):07d}"
            if number not in tally.numbers:
                tally.numbers.add(number)
                self.number = number
                return number


async def caller_loop(
    client: httpx.AsyncClient, hotline: Hotline, caller: Caller, tally: Tally, until: float
) -> None:
    """Walk journeys until the deadline; every fourth walk comes from a new phone (a new caller)."""
    walks = 0
    while time.perf_counter() < until:
        if walks % 4 == 0:
            caller.next_number(tally)
        walk = Walk(caller.rng.choices(list(JOURNEYS), weights=WEIGHTS)[0], caller.number, until)
        if walk.journey == "sms":
            await sms_walk(client, hotline, walk, tally)
        else:
            await voice_walk(client, hotline, walk, caller.rng, tally)
        tally.walks[walk.journey] += 1
        walks += 1


def evidence(url: str, folder: Path) -> dict[str, bytes]:
    """Everything the run left: every file (database, WAL, logs, data dir) and the database dump."""
    blobs = {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    if is_sqlite(url):
        with closing(sqlite3.connect(make_url(url).database or "")) as db:
            blobs["sqlite dump"] = "\n".join(db.iterdump()).encode()
    else:
        blobs["pg_dump"] = pg_dump(url)
    return blobs


def pg_dump(url: str) -> bytes:
    """A plain-text pg_dump of the database (the newest installed pg_dump, else the one on PATH)."""
    from tests.pg import find_postgres

    binaries = find_postgres()
    command = str(binaries / "pg_dump") if binaries else shutil.which("pg_dump") or "pg_dump"
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return subprocess.run([command, "--no-owner", plain], check=True, capture_output=True).stdout


# Every spelling holds the nine national digits (+51..., 51..., %2B51..., 9xxxxxxxx); spaced ones too.
_DIGITS = re.compile(rb"(?=(9\d{8}))")
_SPACED = re.compile(rb"(?=(9\d\d[ .-]\d{3}[ .-]\d{3}))")


def privacy_hits(numbers: set[str], blobs: dict[str, bytes]) -> list[str]:
    """Where any of the numbers appears, in any spelling: 'name (n)' per blob with hits."""
    national = {number[3:].encode() for number in numbers}
    found = []
    for name, blob in blobs.items():
        hits = [m[1] for m in _DIGITS.finditer(blob) if m[1] in national]
        hits += [m[1] for m in _SPACED.finditer(blob) if re.sub(rb"\D", b"", m[1]) in national]
        if hits:
            found.append(f"{name} ({len(hits)})")
    return found


@dataclass(frozen=True)
class Served:
    """A running uvicorn: where it answers and its parent process."""

    base_url: str
    process: subprocess.Popen[bytes]


@contextmanager
def serving(factory: str, workers: int, env: dict[str, str], log_path: Path, port: int) -> Iterator[Served]:
    """uvicorn with `rimay serve`'s settings on a loopback port; stopped (SIGINT) on exit."""
    command = [
        sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--proxy-headers", "--forwarded-allow-ips", "*", "--log-level", "info",
    ]  # fmt: skip
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, env=env, cwd=log_path.parent, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_healthy(base_url, process, log_path)
            yield Served(base_url, process)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_healthy(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Wait until /healthz answers 200; stop the benchmark with the log if the server exits or never does."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited during start-up:\n{log_path.read_text(errors='replace')}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not become healthy in {START_TIMEOUT:.0f} s")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_pids(parent: int) -> list[int]:
    """The uvicorn workers (spawned children); with one worker, the parent serves by itself."""
    workers = [pid for pid in _children(parent) if b"spawn_main" in _read(f"/proc/{pid}/cmdline")]
    return workers or [parent]


def cpu_seconds(parent: int) -> float:
    """The user and system CPU time the workers used so far."""
    return _cpu_of(worker_pids(parent))


def database_cpu_seconds() -> float:
    """The CPU time every PostgreSQL process on this machine used so far (the server and its backends)."""
    return _cpu_of(pid for pid in _all_pids() if _read(f"/proc/{pid}/comm").strip() == b"postgres")


def _cpu_of(pids: Iterable[int]) -> float:
    """User and system CPU time of these processes (fields 14 and 15 of /proc/<pid>/stat), in seconds."""
    ticks = 0
    for pid in pids:
        fields = _read(f"/proc/{pid}/stat").rsplit(b")", 1)[-1].split()
        ticks += int(fields[11]) + int(fields[12]) if len(fields) > 12 else 0
    return ticks / os.sysconf("SC_CLK_TCK")


def _all_pids() -> list[int]:
    return [int(path.name) for path in Path("/proc").iterdir() if path.name.isdigit()]


def peak_rss_mb(parent: int) -> tuple[int, ...]:
    """Each uvicorn worker's peak resident memory (VmHWM), in MB."""
    peaks = []
    for pid in worker_pids(parent):
        match = re.search(rb"VmHWM:\s+(\d+) kB", _read(f"/proc/{pid}/status"))
        if match:
            peaks.append(round(int(match[1]) / 1024))
    return tuple(peaks)


def _children(parent: int) -> list[int]:
    children = []
    for pid in _all_pids():
        fields = _read(f"/proc/{pid}/stat").rsplit(b")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(parent).encode():
            children.append(pid)
    return children


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:  # the process ended meanwhile
        return b""
