"""Is a mail from a directory member really from them? Pure: header values and addresses in,
a verdict with its reason out. The From header alone proves nothing (DESIGN "Mail facts").

Three ways to pass, any is enough (issues 5 and 16), tried in this order: the signed reply
address (1, no I/O), our own DKIM check (2, DNS, only when 1 failed), a trusted
Authentication-Results (3). `attempts` yields them lazily in this order.

1. The mail was sent to the member's signed reply address `support+TD-n.<token>@domain`.
   The token (24 characters of lower-case base32: mail servers may lower-case addresses) is
   `kid exp mac`: one character naming the key that signed it, three for the last day it
   works (days since 2020-01-01), and 20 of HMAC-SHA256(that key, "tierdesk-reply-v2", ticket
   ref, the member's first directory address, kid and exp): 100 bits, compared in constant
   time. A token is a capability for one ticket and one member, handed out only in mails to
   that member, and it stops working (issue 16):
   - on its last day (`auth.reply_address_lifetime` after the mail that carried it), and
   - `auth.reply_address_after_resolve` after the ticket was resolved (a state whose clock
     is stopped): once forwarded, archived or cc'd, an old address acts for no one.
   `auth.secret` can be rotated: tokens signed by a key in `auth.previous_secrets` keep
   working until they expire; removing a key from that list retires its tokens at once.
   Tokens of the first version (20 characters, no expiry) are refused.

2. A DKIM signature we verify ourselves, aligned with the From domain by its DMARC record
   (daemon/auth/dkim_check.py). This module stays pure: the verifier is handed in with the
   policy (AuthPolicy.dkim), the raw mail with the claim.

3. Authentication-Results (RFC 8601) written by OUR receiving server shows `dmarc=pass` for
   the From domain, or `dkim=pass` with a signing domain aligned with it.
   - Only headers whose authserv-id is in `auth.trusted_authserv_ids` count, and only the
     topmost ones: a receiving server prepends its header, so ours is on top and anything
     below it came with the mail. We read at most `auth.trusted_headers` headers from the top
     (default 1) and stop at the first one not ours: a forged header further down, or one
     below a foreign server's, never counts. RFC 8601 section 5 obliges the receiving server
     to delete incoming headers bearing its own authserv-id; raise `trusted_headers` only for
     a server that does that and writes its results in several headers.
   - dmarc=pass counts only with `header.from` equal to the From address's domain (which
     domain the verifier judged must be named).
   - dkim=pass counts only when its `header.d` (else the domain of `header.i`) is aligned
     with the From domain, relaxed: the same domain, or one a subdomain of the other. Without
     a public suffix list this is narrower than DMARC's organisational domain (siblings such
     as a.example.com and b.example.com do not align), never wider; a bare top-level domain
     never aligns.
   - Trust in a pass is trust in the sending domain: it proves the mail left through that
     domain's servers, which must not let their users send as each other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

TOKEN_LENGTH = 24  # kid (1) + last day (3) + mac (20)
_MAC_LENGTH = 20
_V1_LENGTH = 20  # the first version: a bare mac, valid for ever
_CONTEXT = b"tierdesk-reply-v2"
_KEY_ID = b"tierdesk-key-id"
_EPOCH = date(2020, 1, 1)
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_PROPERTY = re.compile(r'([\w.-]+(?:/[\w.-]+)?)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s";]*)')


# ------------------------------------------------------------------ signed reply addresses

def key_id(secret: str) -> str:
    """One base32 character naming a key, so a token says which key to check it with."""
    return _B32[hashlib.sha256(_KEY_ID + b"\x00" + secret.encode()).digest()[0] >> 3]


def _day(day: date) -> str:
    n = max(0, min((day - _EPOCH).days, 32 ** 3 - 1))
    return _B32[n >> 10] + _B32[(n >> 5) & 31] + _B32[n & 31]


def _undo_day(text: str) -> date | None:
    if len(text) != 3 or any(c not in _B32 for c in text):
        return None
    n = (_B32.index(text[0]) << 10) | (_B32.index(text[1]) << 5) | _B32.index(text[2])
    return _EPOCH + timedelta(days=n)


def _mac(secret: str, ref: str, member: str, stamp: str) -> str:
    message = b"\x00".join((_CONTEXT, ref.strip().upper().encode(),
                            member.strip().lower().encode(), stamp.encode()))
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:_MAC_LENGTH]


def sign(ref: str, member: str, secret: str, last_day: date) -> str:
    """The token of `member`'s reply address for ticket `ref`, working through `last_day`."""
    stamp = key_id(secret) + _day(last_day)
    return stamp + _mac(secret, ref, member, stamp)


@dataclass(frozen=True)
class TokenCheck:
    """A token read against the site's keys: `ok`, or why not. `kind` names the refusal
    for the security event: invalid, expired, retired or outdated."""

    ok: bool
    why: str
    kind: str = ""
    last_day: date | None = None


def check_token(token: str, ref: str, member: str, secrets: Sequence[str],
                today: date) -> TokenCheck:
    """A token as written in an address (any case), against the current key and the
    previous ones (`secrets`, current first). Constant-time comparison of the mac."""
    token = token.strip().lower()
    newer = "reply to a newer mail we sent you about this ticket: each carries a fresh address"
    if len(token) == _V1_LENGTH:
        return TokenCheck(False, f"the signed reply address is of an older kind that never "
                                 f"expired and is no longer accepted; {newer}", "outdated")
    last_day = _undo_day(token[1:4]) if len(token) == TOKEN_LENGTH else None
    if last_day is None:
        return TokenCheck(False, f"the signed reply address it was sent to is not valid for "
                                 f"{ref} and {member}", "invalid")
    keys = [s for s in secrets if s and key_id(s) == token[0]]
    if not any(hmac.compare_digest(_mac(s, ref, member, token[:4]), token[4:]) for s in keys):
        if not keys:
            return TokenCheck(False, "the signed reply address was signed with a key this "
                                     f"site no longer holds (retired, or forged); {newer}",
                              "retired", last_day)
        return TokenCheck(False, f"the signed reply address it was sent to is not valid for "
                                 f"{ref} and {member}", "invalid")
    if today > last_day:
        return TokenCheck(False, f"the signed reply address expired on {last_day.isoformat()}; "
                                 f"{newer}", "expired", last_day)
    return TokenCheck(True, f"signed reply address for {ref}", "", last_day)


def signed_address(support_address: str, domain: str, ref: str, token: str) -> str:
    """support+TD-12.<token>@domain, on the same local part as the support address."""
    local = support_address.rsplit("@", 1)[0].split("+", 1)[0]
    return f"{local}+{ref}.{token}@{domain}"


# ------------------------------------------------------------------ Authentication-Results

@dataclass(frozen=True)
class MethodResult:
    """One resinfo: `dkim=pass header.d=example.com` -> ("dkim", "pass", {"header.d": ...})."""

    method: str
    result: str
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuthResults:
    authserv_id: str
    results: tuple[MethodResult, ...]


def parse_authentication_results(value: str) -> AuthResults | None:
    """One header value (RFC 8601 section 2.2), comments dropped; None if it has no
    authserv-id. Unreadable resinfo parts are skipped, never raised on."""
    parts = _split_outside_quotes(_without_comments(value), ";")
    head = parts[0].split()
    if not head:
        return None
    authserv_id = _unquote(head[0]).lower()
    results = tuple(r for r in (_resinfo(p) for p in parts[1:]) if r is not None)
    return AuthResults(authserv_id, results)


def _resinfo(text: str) -> MethodResult | None:
    pairs = _PROPERTY.findall(text)
    if not pairs:
        return None  # "none", or garbage
    (method, result), rest = pairs[0], pairs[1:]
    props = {key.lower(): _unquote(val) for key, val in rest if key.lower() != "reason"}
    return MethodResult(method.split("/")[0].lower(), _unquote(result).lower(), props)


def _without_comments(text: str) -> str:
    """CFWS comments (nestable, with quoted pairs) removed; quoted strings kept as written."""
    out: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in text:
        if escaped:
            escaped = False
            out.append(char if depth == 0 else "")
        elif char == "\\":
            escaped = True
            out.append(char if depth == 0 else "")
        elif char == '"' and depth == 0:
            quoted = not quoted
            out.append(char)
        elif char == "(" and not quoted:
            depth += 1
        elif char == ")" and not quoted and depth:
            depth -= 1
            out.append(" " if depth == 0 else "")
        elif depth == 0:
            out.append(char)
    return "".join(out)


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def trusted_results(values: Sequence[str], trusted_ids: Collection[str],
                    max_headers: int) -> tuple[AuthResults, ...]:
    """The topmost headers written by our own receiving server (see the module docstring):
    at most `max_headers`, stopping at the first one that is not ours."""
    found: list[AuthResults] = []
    for value in values[:max_headers]:
        parsed = parse_authentication_results(value)
        if parsed is None or parsed.authserv_id not in trusted_ids:
            break
        found.append(parsed)
    return tuple(found)


def aligned(signer: str, from_domain: str) -> bool:
    """Relaxed alignment without a public suffix list: equal, or one a subdomain of the
    other; a single-label domain (a TLD) never aligns."""
    a, b = signer.strip(".").lower(), from_domain.strip(".").lower()
    if not a or not b or "." not in a or "." not in b:
        return False
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def _passes(result: MethodResult, from_domain: str) -> bool:
    if result.result != "pass":
        return False
    if result.method == "dmarc":
        judged = result.properties.get("header.from", "").rpartition("@")[2]
        return judged.lower() == from_domain
    if result.method == "dkim":
        return aligned(_dkim_domain(result), from_domain)
    return False


def _dkim_domain(result: MethodResult) -> str:
    if "header.d" in result.properties:
        return result.properties["header.d"]
    return result.properties.get("header.i", "").rpartition("@")[2]


def _spelled(results: Sequence[AuthResults]) -> Iterator[str]:
    for header in results:
        for r in header.results:
            if r.method in ("dmarc", "dkim"):
                domain = r.properties.get("header.from") or _dkim_domain(r)
                yield f"{r.method}={_shown(r.result)}" + (f" ({_shown(domain)})" if domain else "")


_NAME_LIKE = re.compile(r"[A-Za-z0-9@._-]{1,80}")


def _shown(value: str) -> str:
    """A name from the mail, fit to quote in a mail to the member: whoever forged the mail
    must not get a link or a sentence into our notice."""
    return value if _NAME_LIKE.fullmatch(value) else "(unreadable)"


# ------------------------------------------------------------------ the verdict

@dataclass(frozen=True)
class AuthPolicy:
    """What settings.auth says, in plain values."""

    trusted_ids: frozenset[str]
    trusted_headers: int = 1
    secret: str = ""  # empty: signed reply addresses are off
    previous_secrets: tuple[str, ...] = ()  # still accepted until their tokens expire
    after_resolve: timedelta = timedelta(days=14)
    # Our own DKIM check: (raw mail, From domain) -> Verdict; None: off (auth.dkim: false).
    dkim: Callable[[bytes, str], Verdict] | None = field(default=None, compare=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.secret, *self.previous_secrets) if self.secret else ()


@dataclass(frozen=True)
class Claim:
    """What a mail offers to prove its sender: everything as written in the mail."""

    from_addr: str
    auth_results: tuple[str, ...]  # Authentication-Results values, topmost first
    tokens: tuple[str, ...]  # tokens of signed reply addresses for this ticket
    ref: str
    member: str  # the member's first directory address: what tokens are signed for
    now: datetime | None = None  # None: expiry is not checked (explain without a store)
    resolved_at: datetime | None = None  # when the ticket left work (None: it is open)
    raw: bytes = field(default=b"", repr=False)  # the mail as received, for the DKIM check


@dataclass(frozen=True)
class Verdict:
    ok: bool
    how: str  # what proved it, or what failed (for the event and the member's notice)
    # Why a token failed, for the security event: invalid, expired, retired, outdated.
    token: str = ""


def authenticate(claim: Claim, policy: AuthPolicy) -> Verdict:
    """The first proof that holds, in the order of `attempts`; else why none did."""
    failed: list[Verdict] = []
    for _, verdict in attempts(claim, policy):
        if verdict.ok:
            return verdict
        failed.append(verdict)
    return Verdict(False, "; ".join(v.how for v in failed),
                   next((v.token for v in failed if v.token), ""))


def attempts(claim: Claim, policy: AuthPolicy) -> Iterator[tuple[str, Verdict]]:
    """Each way of proof by name with its verdict, lazily: authenticate stops at the first
    that holds (no DNS after a valid signed address), `explain` lists them all."""
    yield "signed reply address", _by_token(claim, policy)
    yield "DKIM (verified here)", _by_dkim(claim, policy)
    yield "Authentication-Results", _by_header(claim, policy)


def _by_token(claim: Claim, policy: AuthPolicy) -> Verdict:
    if not claim.tokens:
        return Verdict(False, "it was not sent to your signed reply address")
    if not policy.secret:
        return Verdict(False, "signed reply addresses are not configured on this site")
    today = claim.now.date() if claim.now else date.min  # no clock: expiry unchecked
    checks = [check_token(t, claim.ref, claim.member, policy.secrets, today)
              for t in claim.tokens]
    passed = next((c for c in checks if c.ok), None)
    if passed is None:
        return Verdict(False, checks[0].why, checks[0].kind)
    if claim.resolved_at is not None and claim.now is not None \
            and claim.now > claim.resolved_at + policy.after_resolve:
        stopped = (claim.resolved_at + policy.after_resolve).date().isoformat()
        return Verdict(False, f"the signed reply address stopped working on {stopped}, "
                              f"{_days(policy.after_resolve)} after {claim.ref} was resolved; "
                              "reply to a newer mail we sent you about this ticket",
                       "expired")
    return Verdict(True, passed.why)


def _days(span: timedelta) -> str:
    days = span.days
    return f"{days} day{'s' if days != 1 else ''}" if days else str(span)


def _by_dkim(claim: Claim, policy: AuthPolicy) -> Verdict:
    if policy.dkim is None:
        return Verdict(False, "DKIM signatures are not checked on this site (auth.dkim)")
    return policy.dkim(claim.raw, claim.from_addr.rpartition("@")[2].lower())


def _by_header(claim: Claim, policy: AuthPolicy) -> Verdict:
    domain = claim.from_addr.rpartition("@")[2].lower()
    ours = trusted_results(claim.auth_results, policy.trusted_ids, policy.trusted_headers)
    if not ours:
        return Verdict(False, _no_trusted_header(claim.auth_results, policy))
    for header in ours:
        for result in header.results:
            if _passes(result, domain):
                return Verdict(True, f"{result.method}=pass for {domain} "
                                     f"by {header.authserv_id}")
    seen = ", ".join(_spelled(ours)) or "no dmarc or dkim result"
    return Verdict(False, f"{ours[0].authserv_id} found no aligned dmarc or dkim pass for "
                          f"{domain} ({seen})")


def _no_trusted_header(values: Sequence[str], policy: AuthPolicy) -> str:
    trusted = ", ".join(sorted(policy.trusted_ids)) or "none configured"
    if not values:
        return f"it has no Authentication-Results header from our mail server ({trusted})"
    top = parse_authentication_results(values[0])
    named = _shown(top.authserv_id) if top else "(unreadable)"
    return (f"its topmost Authentication-Results header is from {named}, not from our mail "
            f"server ({trusted})")
