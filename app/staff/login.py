"""Login throttling: failures per account and per IP address, slowed and then refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from app.throttle.service import ThrottleService

ACCOUNT_BUCKET: Final = "login_account"
IP_BUCKET: Final = "login_ip"
MAX_FAILURES: Final = 5
"""After this many failures in the window, further attempts are refused without checking."""
WINDOW: Final = timedelta(minutes=15)
DELAY_STEP_SECONDS: Final = 0.25
MAX_DELAY_SECONDS: Final = 2.0


def delay_for(failures: int) -> float:
    """Seconds to wait before answering, growing with recent failures and bounded."""
    return min(DELAY_STEP_SECONDS * failures, MAX_DELAY_SECONDS)


class LoginGuard:
    """Counts failed logins under keyed hashes of the lower-cased e-mail and of the IP address."""

    def __init__(self, throttle: ThrottleService) -> None:
        self.throttle = throttle

    async def failures(self, email: str, ip: str) -> int:
        """The larger of the account's and the address's recent failures."""
        account = await self.throttle.count(ACCOUNT_BUCKET, email.strip().lower(), WINDOW)
        address = await self.throttle.count(IP_BUCKET, ip, WINDOW)
        return max(account, address)

    async def failed(self, email: str, ip: str) -> None:
        """Count a failure for both, and forget failures too old to count."""
        await self.throttle.record(ACCOUNT_BUCKET, email.strip().lower())
        await self.throttle.record(IP_BUCKET, ip)
        for bucket in (ACCOUNT_BUCKET, IP_BUCKET):
            await self.throttle.prune(bucket, WINDOW)
