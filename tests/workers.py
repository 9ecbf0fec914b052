"""The real service with N uvicorn workers on PostgreSQL, which worker holds a connection, a stub Twilio.

`python -m tests.workers outbox STUB_URL NAME` runs `rimay worker --once` batches
(app.outbox.admin.run_worker) until the queue is empty, with Twilio's REST host swapped for a local stub:
only the network endpoint is replaced, so two such processes run the real claim and send code at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy.engine import make_url

from tests.conftest import AUTH_TOKEN, ROOT
from tests.server import free_port, wait_healthy

SECRET_KEY = "test-secret-key-" + "x" * 32
CONTACT_KEY = "test-contact-key-" + "y" * 32
KEEP_ALIVE = 60
"""Seconds an idle connection stays open, so a connection stays with the worker that accepted it."""
WORKER_HEADER = "X-Test-Worker"


def service_env(data_dir: Path, database_url: str, base_url: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The environment `running_service` gives the service, on a PostgreSQL database instead of SQLite."""
    return {
        **os.environ,
        "RIMAY_DATA_DIR": str(data_dir),
        "RIMAY_DATABASE_URL": database_url,
        "RIMAY_PUBLIC_BASE_URL": base_url,
        "RIMAY_SECRET_KEY": SECRET_KEY,
        "RIMAY_CONTACT_KEY": CONTACT_KEY,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "RIMAY_LOG_LEVEL": "INFO",
        "RIMAY_FLOWS_DIR": str(ROOT / "voice_flows"),
        "RIMAY_AUDIO_DIR": str(ROOT / "audio"),
        **extra,
    }


@dataclass
class Served:
    """The service as uvicorn runs it (what `rimay serve` runs), restartable on the same port."""

    workdir: Path
    database_url: str
    workers: int = 1
    extra_env: Mapping[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        """Where it answers; also its public base URL, so signatures and action URLs match."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """The log of the current (or last) start."""
        return self.workdir / f"server-{self.starts}.log"

    def start(self) -> None:
        """Start (again) on the same port and database; return once /healthz answers."""
        self.starts += 1
        data_dir = self.workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = service_env(data_dir, self.database_url, self.base_url, self.extra_env)
        # `rimay serve`'s uvicorn options, plus a long keep-alive (not a `rimay serve` option).
        command = [
            *(sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"),
            *("--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)),
            *("--proxy-headers", "--forwarded-allow-ips", "*", "--timeout-keep-alive", str(KEEP_ALIVE)),
        ]
        with self.log_path.open("wb") as log:
            # A session of its own: SIGKILL reaches the supervisor and every worker, nothing else.
            self.process = subprocess.Popen(
                command,
                env=env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_healthy(self.base_url, self.process, self.log_path)

    def kill(self) -> None:
        """SIGKILL every process of the service: no shutdown, no cleanup, like a power cut."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        """Stop cleanly (SIGINT), or kill after 15 s."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=15)
        # Any worker left behind goes too; the group is ours alone.
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def worker_pids(self) -> set[int]:
        """The processes that serve requests: uvicorn's workers, or the server itself with one worker."""
        assert self.process is not None
        if self.workers == 1:
            return {self.process.pid}
        return {pid for pid in _children(self.process.pid) if _listens(pid)}


@contextmanager
def serving(
    workdir: Path, database_url: str, *, workers: int = 1, env: Mapping[str, str] | None = None
) -> Iterator[Served]:
    """The service started on an already migrated database; stopped on exit."""
    served = Served(workdir, database_url, workers, dict(env or {}))
    served.start()
    try:
        yield served
    finally:
        served.stop()


def _children(parent: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _listens(pid: int) -> bool:
    return bool(_socket_inodes(pid))


def connection_owners(server_port: int, pids: set[int]) -> dict[int, int]:
    """Client port -> the worker pid holding that accepted connection to ``server_port``."""
    by_inode = {inode: pid for pid in pids for inode in _socket_inodes(pid)}
    owners = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            local, remote, inode = parts[1], parts[2], int(parts[9])
            if int(local.rsplit(":", 1)[1], 16) == server_port and inode in by_inode:
                owners[int(remote.rsplit(":", 1)[1], 16)] = by_inode[inode]
    return owners


def libpq(database_url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as psycopg takes it."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def client_port(response: httpx.Response) -> int:
    """The local port of the connection a response came over."""
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


async def pinned_clients(served: Served, per_worker: int) -> dict[int, list[httpx.AsyncClient]]:
    """At least ``per_worker`` single-connection clients per worker, each known to be held by that worker."""
    pids = served.worker_pids()
    assert len(pids) == served.workers, f"expected {served.workers} workers, found {sorted(pids)}"
    pinned: dict[int, list[httpx.AsyncClient]] = {pid: [] for pid in pids}
    spare: list[httpx.AsyncClient] = []
    for _ in range(20):
        batch = [_single_connection(served.base_url) for _ in range(per_worker)]
        answers = await asyncio.gather(*(client.get("/healthz") for client in batch))
        owners = connection_owners(served.port, pids)
        for client, answer in zip(batch, answers, strict=True):
            owner = owners.get(client_port(answer))
            bucket = pinned[owner] if owner is not None and len(pinned[owner]) < per_worker else spare
            bucket.append(client)
        if all(len(clients) >= per_worker for clients in pinned.values()):
            break
    for client in spare:
        await client.aclose()
    counts = {pid: len(clients) for pid, clients in pinned.items()}
    assert min(counts.values()) >= per_worker, f"the kernel never spread connections evenly enough: {counts}"
    return pinned


def _single_connection(base_url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=KEEP_ALIVE)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30)


async def owned_by(served: Served, responses: dict[int, list[httpx.Response]]) -> None:
    """Each response still came over a connection held by the worker it was pinned to."""
    owners = connection_owners(served.port, served.worker_pids())
    for pid, answers in responses.items():
        assert {owners.get(client_port(answer)) for answer in answers} == {pid}


# ------------------------------------------------------------------------------------- a stub Twilio


@dataclass
class StubTwilio:
    """Twilio's Messages endpoint on loopback: records every create; holds sends until all workers sent."""

    workers: int
    received: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    all_seen: threading.Event = field(default_factory=threading.Event)

    def record(self, worker: str, body: dict[str, str]) -> None:
        """Note one create, and wait (at most 10 s) until every worker has made one."""
        with self.lock:
            self.received.append((worker, body))
            if len({name for name, _ in self.received}) >= self.workers:
                self.all_seen.set()
        # Holding the first sends proves the workers were sending at the same time, not in turn.
        self.all_seen.wait(timeout=10)


@contextmanager
def stub_twilio(workers: int) -> Iterator[tuple[str, StubTwilio]]:
    """The stub's base URL and its record, served by a thread for the test's duration."""
    stub = StubTwilio(workers)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            stub.record(self.headers.get(WORKER_HEADER, "?"), form)
            body = json.dumps({"sid": "SM" + uuid.uuid4().hex, "status": "queued"}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Silent: request lines are of no use here."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", stub
    finally:
        server.shutdown()
        server.server_close()


class _ToStub(httpx.AsyncBaseTransport):
    """Sends every request to the stub instead of api.twilio.com, naming the worker."""

    def __init__(self, stub_url: str, name: str) -> None:
        self.stub = urlsplit(stub_url)
        self.name = name
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host=self.stub.hostname, port=self.stub.port)
        request.headers["Host"] = self.stub.netloc
        request.headers[WORKER_HEADER] = self.name
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _drain_outbox(stub_url: str, name: str) -> int:
    from twilio.rest import Client

    from app.outbox.admin import run_worker
    from app.outbox.twilio_http import HttpxTwilioClient
    from app.settings import Settings

    def factory(settings: Settings) -> Client:
        http = httpx.AsyncClient(transport=_ToStub(stub_url, name))
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        return Client(settings.twilio_account_sid, token, http_client=HttpxTwilioClient(http))

    settings = Settings()
    total = 0
    # Small batches, so the two workers interleave claims many times.
    while claimed := await run_worker(settings, once=True, poll=0.1, batch=3, client_factory=factory):
        total += claimed
    return total


def drain_in_processes(stub_url: str, env: Mapping[str, str], names: list[str]) -> list[int]:
    """Run one outbox worker process per name at once; how many rows each claimed (fails on an error)."""
    base = {key: value for key, value in os.environ.items() if not key.startswith(("RIMAY_", "TWILIO_"))}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.workers", "outbox", stub_url, name],
            env={**base, **env},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in names
    ]
    claimed = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode(errors="replace")
        claimed.append(int(out.split()[-1]))
    return claimed


if __name__ == "__main__":
    _, role, url, worker_name = sys.argv
    assert role == "outbox", role
    print(asyncio.run(_drain_outbox(url, worker_name)))
