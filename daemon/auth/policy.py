"""A member's mail as sender_auth judges it: the policy from `auth:` settings and the claim
from the mail, built the same way for ingest (daemon/inbound/technician.py) and `explain`."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from daemon.auth.sender_auth import AuthPolicy, Claim
from daemon.mail.message import InboundMessage
from daemon.mail.thread_keys import plus_refs

if TYPE_CHECKING:
    from daemon.auth.dkim_check import DkimVerifier
    from daemon.config.settings import Settings


def policy(settings: Settings, dkim: DkimVerifier | None, now: datetime) -> AuthPolicy:
    auth = settings.auth
    return AuthPolicy(frozenset(auth.trusted_authserv_ids), auth.trusted_headers,
                      auth.secret.get_secret_value(),
                      tuple(s.get_secret_value() for s in auth.previous_secrets),
                      auth.reply_address_after_resolve,
                      dkim.at(now) if dkim is not None else None)


def claim(msg: InboundMessage, raw: bytes, settings: Settings, ref: str, member: str,
          now: datetime | None, resolved_at: datetime | None = None) -> Claim:
    """What the mail offers for ticket `ref`: only tokens of addresses for that ticket."""
    refs = plus_refs(msg, settings.mail.address, (settings.site.domain,))
    tokens = tuple(p.token for p in refs if p.token and p.ref == ref)
    return Claim(msg.from_addr, tuple(msg.headers.get("authentication-results", ())), tokens,
                 ref, member, now, resolved_at, raw)


def dkim_verifier(settings: Settings) -> DkimVerifier | None:
    """Our DKIM check as the settings ask for it (auth.dkim, dns_servers, dns_timeout)."""
    auth = settings.auth
    if not auth.dkim:
        return None
    # Imported here: commands that never read mail need not load dkimpy and dnspython.
    from daemon.auth.dkim_check import DkimVerifier
    return DkimVerifier.build(auth.dns_servers, auth.dns_timeout)
