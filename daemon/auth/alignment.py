"""DMARC identifier alignment (RFC 7489 section 3.1), pure: which DKIM `d=` speaks for which
From domain, by the DMARC record's `adkim` and the organisational domain.

The organisational domain comes from the public suffix list that `publicsuffixlist` bundles:
no download at run time (tldextract fetches the list by default; this host reaches no such
site, and a daemon must not depend on one), and the package is released as the list changes.

Without any DMARC record the domain's owner has said nothing about relaxed alignment, so we
accept less than DMARC's relaxed mode: `d=` must be the From domain or one of its parents up
to the organisational domain. Whoever holds example.com's DNS holds every name below it, so
its signature on mail from sub.example.com proves what a signature by sub.example.com would;
a sibling or a child (a.example.com signing for b.example.com, or a subdomain delegated to a
mailing service signing for example.com) proves that only once the owner opts in with a
record (relaxed is DMARC's default there).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

from publicsuffixlist import PublicSuffixList

Mode = Literal["strict", "relaxed", "parent"]  # parent: no DMARC record (module docstring)


@cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # ~35 ms to load, once per process


def normal(domain: str) -> str:
    return domain.strip().rstrip(".").lower()


def org_domain(domain: str) -> str | None:
    """example.co.uk for a.b.example.co.uk; None for a public suffix itself (co.uk, com)."""
    name = normal(domain)
    return _suffixes().privatesuffix(name) if name else None


def aligned(signer: str, from_domain: str, mode: Mode) -> bool:
    """Does a DKIM signature by `signer` (its d=) speak for mail From `from_domain`?"""
    d, f = normal(signer), normal(from_domain)
    org = org_domain(f)
    if not d or org is None:  # a public suffix (com, co.uk) speaks for nobody
        return False
    if d == f:
        return True
    if mode == "strict" or org_domain(d) != org:
        return False
    return mode == "relaxed" or f.endswith("." + d)


@dataclass(frozen=True)
class Dmarc:
    """What we use of a DMARC record: the DKIM alignment it asks for."""

    domain: str  # where the record was found (the From domain or its organisational one)
    adkim: Literal["strict", "relaxed"]


def parse_dmarc(records: tuple[bytes, ...], domain: str) -> Dmarc | None:
    """The DMARC policy of the TXT records at _dmarc.<domain>: exactly one must start with
    v=DMARC1 (RFC 7489 6.6.3: none or several is no record). adkim=s is strict; anything else,
    or no adkim, relaxed (its default)."""
    found = [r for r in records if r.lstrip().startswith(b"v=DMARC1")]
    if len(found) != 1:
        return None
    tags = dict(_tag(part) for part in found[0].decode("ascii", "replace").split(";"))
    return Dmarc(domain, "strict" if tags.get("adkim", "r").lower() == "s" else "relaxed")


def _tag(part: str) -> tuple[str, str]:
    name, _, value = part.partition("=")
    return name.strip().lower(), value.strip()


def dmarc_names(from_domain: str) -> tuple[str, ...]:
    """Where to look for the From domain's DMARC record, in order: its own name, then its
    organisational domain's (RFC 7489 6.6.3)."""
    f = normal(from_domain)
    org = org_domain(f)
    return tuple(dict.fromkeys(f"_dmarc.{d}" for d in (f, org) if d))
