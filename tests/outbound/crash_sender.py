"""Run by test_crash.py in a subprocess: one sender pass whose SMTP client, once the server has
accepted a mail, announces it and then hangs before the sender can record it, so the test can
kill the process between "sent" and "marked sent".

    python tests/outbound/crash_sender.py DATABASE_URL SMTP_PORT
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import timedelta

import aiosmtplib

from daemon.config.settings import SmtpSettings
from daemon.outbound.sender import Sender
from daemon.outbound.smtp import Accepted, SmtpPool
from daemon.store.database import open_database


class HangingPool(SmtpPool):
    async def _send(self, client: aiosmtplib.SMTP, sender: str, recipients: Sequence[str],
                    data: bytes) -> Accepted:
        accepted = await super()._send(client, sender, recipients, data)
        print("accepted", flush=True)
        await asyncio.sleep(3600)
        return accepted


async def main(url: str, port: int) -> None:
    database = open_database(url)
    settings = SmtpSettings(host="127.0.0.1", port=port, security="none",
                            timeout=timedelta(seconds=5))
    async with HangingPool(settings, size=1) as pool:
        await Sender(database, pool, "support@example.com").run_once()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
