import json, httpx, pytest
from tests.test_floip import BASE, Partner, Stored, partner, stored  # noqa: F401

async def test_peek(partner: Partner, stored: Stored) -> None:
    spec = (await partner.client.get("/openapi.json")).json()
    print(json.dumps({k: v for k, v in spec["paths"].items() if "flow-results" in k}, indent=1)[:3000])
    for url in (BASE, f"{BASE}/{stored.package}", f"{BASE}/{stored.package}/responses?page[size]=2&filter[start-timestamp]=2026-11-25T05:00:00 00:00"):
        r = await partner.client.get(url, headers=partner.headers)
        print(r.status_code, r.headers["content-type"]); print(json.dumps(r.json(), indent=1, ensure_ascii=False))
    r = await partner.client.get(f"{BASE}/{stored.package}/responses?page[size]=x")
    print(r.status_code, r.headers, r.text)
