"""TXT lookups for DKIM keys and DMARC records: dnspython, a cache that keeps each answer for
its DNS TTL (no-such-record answers too, briefly), and a time budget per mail.

Why a cache of our own: dnspython's resolver cache expires by the wall clock; ours by the
`now` the caller passes (the clock seam), so tests decide when an entry is stale. It is
bounded (least recently used out first). Failures (timeouts, SERVFAIL) are never cached:
they say nothing about the name, and the next mail should ask again.

Why a budget: one mail may need a DMARC record or two and a key per signature; all of them
together get `timeout`, so a dead resolver costs a mail at most that long, never a stall.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import dns.exception
import dns.message
import dns.nameserver
import dns.rdatatype
import dns.resolver

from daemon.config.settings import dns_server_address

MAX_ENTRIES = 4096
MAX_TTL = timedelta(days=1)  # a record with a week's TTL is still asked for again daily
NEGATIVE_TTL = timedelta(minutes=1)  # no SOA in the answer to tell us how long
MAX_NEGATIVE_TTL = timedelta(minutes=5)  # a key published just now is found soon

Records = tuple[bytes, ...]  # each TXT record's strings joined; () = no such record


class DnsFailure(Exception):
    """No answer to rely on (timeout, SERVFAIL, no resolver): the str says which name."""


@dataclass(frozen=True)
class _Entry:
    records: Records
    expires: datetime


class TxtCache:
    """TXT records by name, cached per TTL; one per Runtime, shared by all mails."""

    def __init__(self, servers: Sequence[str] = (), *, max_entries: int = MAX_ENTRIES) -> None:
        self._servers = tuple(servers)
        self._max = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._resolver: dns.resolver.Resolver | None = None
        self.queries = 0  # sent to DNS, for the bench and tests

    def budget(self, now: datetime, timeout: timedelta) -> Lookups:
        """Lookups for one mail: together they get `timeout`."""
        return Lookups(self, now, timeout)

    def cached(self, name: str, now: datetime) -> Records | None:
        key = _key(name)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.expires <= now:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry.records

    def ask(self, name: str, now: datetime, lifetime: float, shown_timeout: str) -> Records:
        """From DNS (not the cache), then kept for the answer's TTL."""
        self.queries += 1
        records, ttl = self._query(name, lifetime, shown_timeout)
        with self._lock:
            self._entries[_key(name)] = _Entry(records, now + ttl)
            self._entries.move_to_end(_key(name))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return records

    def _query(self, name: str, lifetime: float, shown_timeout: str) -> tuple[Records, timedelta]:
        try:
            answer = self._get_resolver().resolve(name, dns.rdatatype.TXT, lifetime=lifetime,
                                                  raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN as exc:
            return (), _negative_ttl(exc.response(exc.qnames()[0]))
        except dns.resolver.LifetimeTimeout:
            raise DnsFailure(f"DNS lookup of {name} timed out after {shown_timeout}") from None
        except dns.resolver.NoNameservers as exc:
            raise DnsFailure(f"DNS lookup of {name} failed ({_rcodes(exc)})") from None
        except dns.resolver.NoResolverConfiguration:
            raise DnsFailure("no DNS resolver is configured (/etc/resolv.conf is missing or "
                             "empty; set auth.dns_servers)") from None
        except dns.exception.DNSException as exc:
            raise DnsFailure(f"DNS lookup of {name} failed ({type(exc).__name__})") from None
        if answer.rrset is None:
            return (), _negative_ttl(answer.response)
        records = tuple(b"".join(r.strings) for r in answer.rrset)
        return records, min(timedelta(seconds=answer.rrset.ttl), MAX_TTL)

    def _get_resolver(self) -> dns.resolver.Resolver:
        """Built at first use: a site without /etc/resolv.conf fails one lookup, not start-up."""
        if self._resolver is None:
            resolver = dns.resolver.Resolver(configure=not self._servers)
            if self._servers:
                resolver.nameservers = [dns.nameserver.Do53Nameserver(*dns_server_address(s))
                                        for s in self._servers]
            resolver.cache = None  # ours instead (the module docstring)
            self._resolver = resolver
        return self._resolver


class Lookups:
    """One mail's TXT lookups within its time budget; a callable dkimpy can use as dnsfunc."""

    def __init__(self, cache: TxtCache, now: datetime, timeout: timedelta) -> None:
        self._cache, self._now = cache, now
        self._timeout = timeout.total_seconds()
        self._deadline = time.monotonic() + self._timeout

    def __call__(self, name: str) -> Records:
        found = self._cache.cached(name, self._now)
        if found is not None:
            return found
        shown = f"{self._timeout:g}s"
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise DnsFailure(f"DNS lookup of {_key(name)} timed out after {shown}")
        return self._cache.ask(_key(name), self._now, left, shown)

    def dkim_key(self, name: bytes, timeout: float = 0) -> bytes | None:
        """dkimpy's dnsfunc: the first TXT record, None if there is none. (Its `timeout` is
        ignored: the mail's budget rules.)"""
        records = self(name.decode("ascii", "replace"))
        return records[0] if records else None


def _key(name: str) -> str:
    return name.rstrip(".").lower()


def _negative_ttl(response: dns.message.Message | None) -> timedelta:
    """RFC 2308: the SOA's TTL or its minimum, whichever is less; capped short."""
    for rrset in response.authority if response is not None else ():
        if rrset.rdtype == dns.rdatatype.SOA:
            seconds = min(rrset.ttl, min(r.minimum for r in rrset))
            return min(timedelta(seconds=seconds), MAX_NEGATIVE_TTL)
    return NEGATIVE_TTL


def _rcodes(exc: dns.resolver.NoNameservers) -> str:
    """What the servers said, e.g. "SERVFAIL" (or the error of a server that said nothing)."""
    said = sorted({str(error[3]) for error in exc.kwargs.get("errors", ()) if len(error) >= 4})
    return ", ".join(said) or "no DNS server answered"
