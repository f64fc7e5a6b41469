"""Our own DKIM check (issue 16): does a valid DKIM signature of the From domain, aligned as
its DMARC record asks, prove a member's mail? For sites whose mailbox is filled by Dovecot
LMTP, fetchmail or a relay, where no receiving server of ours writes Authentication-Results.

Per signature, cheapest reason first, so DNS is asked only when it can decide:
1. d= aligned with the From domain (daemon/auth/alignment.py). d= equal to the From domain
   needs no DMARC record; another organisational domain never aligns; only a d= of the
   same organisation needs the record (adkim=s strict, else relaxed; none: parents only);
2. the signature verifies (dkimpy; its key from DNS) and signs From;
3. an l= signature counts only if the unsigned rest of the body is whitespace: anything else
   there (a #resolve, a MIME part) was added by whoever handled the mail after signing.
A DNS failure refuses the mail with the name that failed; it never raises out of here.

dkimpy judges t= and x= by the wall clock (a library detail: a signature from the future or
expired); our cache ages by the `now` we are given.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dkim
from dkim.canonicalization import CanonicalizationPolicy
from dkim.util import InvalidTagValueList, parse_tag_value

from daemon.auth.alignment import Dmarc, aligned, dmarc_names, normal, org_domain, parse_dmarc
from daemon.auth.dns_cache import DnsFailure, Lookups, TxtCache
from daemon.auth.sender_auth import Verdict

log = logging.getLogger(__name__)
MIN_KEY_BITS = 1024  # RFC 8301: verifiers must not accept smaller RSA keys
MAX_SIGNATURES = 5  # a mail with more is judged by its first five (bounded DNS and work)
_NAME_LIKE = re.compile(r"[A-Za-z0-9@._-]{1,80}")


@dataclass(frozen=True)
class DkimVerifier:
    """Held by the Runtime: the TXT cache outlives mails, the budget is per mail."""

    dns: TxtCache
    timeout: timedelta

    @classmethod
    def build(cls, servers: tuple[str, ...], timeout: timedelta) -> DkimVerifier:
        return cls(TxtCache(servers), timeout)

    def at(self, now: datetime) -> Callable[[bytes, str], Verdict]:
        """The verifier AuthPolicy.dkim takes: (raw mail, From domain) -> Verdict."""
        return lambda raw, from_domain: self.check(raw, from_domain, now)

    def check(self, raw: bytes, from_domain: str, now: datetime) -> Verdict:
        try:
            return _Check(raw, normal(from_domain), self.dns.budget(now, self.timeout)).run()
        except Exception as exc:  # noqa: BLE001 - a library's surprise refuses, never drops
            # the mail: quarantining it would also keep the member's words off the ticket.
            log.warning("DKIM check failed unexpectedly: %s: %s", type(exc).__name__, exc)
            return Verdict(False, f"its DKIM signature could not be checked "
                                  f"({type(exc).__name__})")


@dataclass
class _Notes:
    """A logger for dkimpy: keeps its errors (why a key was unusable) instead of logging."""

    errors: list[str] = field(default_factory=list)

    def error(self, msg: str, *args: Any) -> None:
        self.errors.append(msg % args if args else msg)

    def debug(self, msg: str, *args: Any) -> None:
        pass

    info = warning = debug


@dataclass
class _Check:
    raw: bytes
    domain: str  # the From domain, normalised
    lookups: Lookups
    _policy: Dmarc | None = None
    _looked_up: bool = False  # DMARC is asked for at most once per mail

    def run(self) -> Verdict:
        notes = _Notes()
        try:
            signer = dkim.DKIM(self.raw, logger=notes, minkey=MIN_KEY_BITS)
        except dkim.DKIMException as exc:
            return Verdict(False, f"its DKIM signature cannot be read ({_plain(exc)})")
        signatures = _signatures(signer)
        if not signatures:
            return Verdict(False, "it has no DKIM signature")
        reasons: list[str] = []
        for index, fields in signatures[:MAX_SIGNATURES]:
            by = _shown(fields.get(b"d", b"").decode("ascii", "replace"))
            try:
                why = self._why_not(signer, index, fields, notes)
            except DnsFailure as exc:
                why = str(exc)
            if why is None:
                return Verdict(True, f"dkim=pass for {self.domain} (d={by}), checked by us")
            reasons.append(f"{by}: {why}" if len(signatures) > 1 else why)
        if len(reasons) == 1:
            return Verdict(False, f"its DKIM signature by {by} does not count: {reasons[0]}")
        return Verdict(False, f"none of its {len(signatures)} DKIM signatures counts "
                              f"({'; '.join(reasons)})")

    def _why_not(self, signer: dkim.DKIM, index: int, fields: dict[bytes, bytes],
                 notes: _Notes) -> str | None:
        """None if this signature proves the From domain, else why not."""
        d = normal(fields.get(b"d", b"").decode("ascii", "replace"))
        misaligned = self._misaligned(d)
        if misaligned:
            return misaligned
        if b"from" not in re.split(rb"\s*:\s*", fields.get(b"h", b"").lower().strip()):
            return "it does not sign the From header"
        notes.errors.clear()
        try:
            valid = signer.verify(index, dnsfunc=self.lookups.dkim_key)
        except dkim.DKIMException as exc:
            return _failed(exc)
        if not valid:
            return self._invalid(d, fields, notes)
        return _unsigned_tail(signer, fields)

    def _misaligned(self, d: str) -> str | None:
        if d == self.domain and org_domain(d) is not None:
            return None  # aligned in every mode: no DMARC record needed
        if org_domain(d) is None or org_domain(d) != org_domain(self.domain):
            return f"it is not aligned with {self.domain} (another organisational domain)"
        dmarc = self.dmarc()
        mode = dmarc.adkim if dmarc else "parent"
        if aligned(d, self.domain, mode):
            return None
        if dmarc is not None:  # strict
            return (f"the DMARC record of {dmarc.domain} asks for strict alignment (adkim=s) "
                    f"and it is not {self.domain}")
        return (f"it is neither {self.domain} nor a parent domain of it, and {self.domain} has "
                f"no DMARC record that would allow relaxed alignment")

    def dmarc(self) -> Dmarc | None:
        """The From domain's DMARC policy, else its organisational domain's (looked up once)."""
        if not self._looked_up:
            for name in dmarc_names(self.domain):
                self._policy = parse_dmarc(self.lookups(name), name.removeprefix("_dmarc."))
                if self._policy is not None:
                    break
            self._looked_up = True  # not after a DnsFailure: the next signature asks again
        return self._policy

    def _invalid(self, d: str, fields: dict[bytes, bytes], notes: _Notes) -> str:
        selector = fields.get(b"s", b"").decode("ascii", "replace")
        name = f"{selector}._domainkey.{d}"
        if not self.lookups(name):  # cached by now: no second query
            return f"no DKIM key is published at {_shown(name)}"
        if notes.errors:
            return f"its key at {_shown(name)} is unusable ({_plain(notes.errors[-1])})"
        return "the signature does not verify (the signed headers were changed, or another key)"


def _signatures(signer: dkim.DKIM) -> list[tuple[int, dict[bytes, bytes]]]:
    """(index, tags) of each readable DKIM-Signature, topmost first."""
    found: list[tuple[int, dict[bytes, bytes]]] = []
    values = [v for name, v in signer.headers if name.lower() == b"dkim-signature"]
    for index, value in enumerate(values):
        try:
            found.append((index, parse_tag_value(value)))
        except InvalidTagValueList:
            continue
    return found


def _unsigned_tail(signer: dkim.DKIM, fields: dict[bytes, bytes]) -> str | None:
    """An l= signature signs only a prefix of the canonical body: the rest must be blank."""
    if b"l" not in fields:
        return None
    length = int(fields[b"l"])  # dkimpy has checked it is a decimal number
    policy = CanonicalizationPolicy.from_c_value(fields.get(b"c", b"simple/simple"))
    tail = policy.canonicalize_body(signer.body)[length:]
    if not tail.strip():
        return None
    return (f"it signs only the first {length} bytes of the body (l={length}), and "
            f"{len(tail)} unsigned bytes of text follow them")


def _failed(exc: dkim.DKIMException) -> str:
    text = str(exc)
    if text.startswith("body hash mismatch"):
        return "the body was changed after signing (body hash mismatch)"
    return f"it is not valid ({_plain(exc)})"


def _plain(error: object) -> str:
    """dkimpy's message without the values it quotes from the mail (they end up in a mail
    to the member, and whoever forged the mail chose them)."""
    return str(error).split(" (", 1)[0].split(":", 1)[0][:80]


def _shown(value: str) -> str:
    return value if _NAME_LIKE.fullmatch(value) else "(unreadable)"
