"""`rimay serve --workers 2`: whichever worker answers `/metrics`, it counts every worker's webhooks."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.simulator import TwilioSigner
from tests.conftest import AUTH_TOKEN
from tests.server import running_service

MAX_CALLS = 200


def _writers(folder: Path) -> set[str]:
    """The worker processes that have timed a webhook (one histogram file each)."""
    return {path.stem.rsplit("_", 1)[1] for path in folder.glob("histogram_*.db")}


def _count(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "rimay_webhook_seconds_count" and sample.labels.get("route") == "/twilio/voice"
    )


def test_two_workers_add_up_their_metrics(tmp_path: Path) -> None:
    """Calls answered by both workers: every scrape, from either worker, reports all of them."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_99999.db").write_bytes(b"stale")  # left by an earlier run: must be cleared
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder)}
    with running_service(tmp_path, env=env, workers=2, log_level="INFO") as service:
        signer = TwilioSigner(AUTH_TOKEN, service.base_url)
        calls = 0
        # A fresh connection per call, until both workers have answered some (each writes its own file).
        while len(_writers(folder)) < 2 and calls < MAX_CALLS:
            with httpx.Client(base_url=service.base_url, timeout=10) as client:
                params = {"CallSid": f"CA{calls:032x}", "From": "anonymous", "To": "+15005550006"}
                url = signer.public("/twilio/voice")
                response = client.post("/twilio/voice", data=params, headers=signer.headers(url, params))
                assert response.status_code == 200
            calls += 1
        assert len(_writers(folder)) == 2, "both workers answered calls"
        scrapes = []
        for _ in range(6):
            with httpx.Client(base_url=service.base_url, timeout=10) as client:
                scrapes.append(_count(client.get("/metrics").text))
    assert scrapes == [calls] * 6, "each scrape adds up both workers (and nothing stale)"
