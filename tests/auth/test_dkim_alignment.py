"""DMARC alignment, pure (daemon/auth/alignment.py): organisational domains from the bundled
public suffix list, strict / relaxed / no-record ("parent") alignment, DMARC records read."""

from __future__ import annotations

import pytest

from daemon.auth.alignment import Dmarc, aligned, dmarc_names, org_domain, parse_dmarc


@pytest.mark.parametrize(("domain", "org"), [
    ("example.com", "example.com"), ("a.b.Example.COM.", "example.com"),
    ("mail.example.co.uk", "example.co.uk"), ("example.co.uk", "example.co.uk"),
    ("alice.github.io", "alice.github.io"),  # a private suffix: each user is their own org
    ("mail.evil.test", "evil.test"), ("co.uk", None), ("com", None), ("", None),
])
def test_organisational_domain(domain: str, org: str | None) -> None:
    assert org_domain(domain) == org


@pytest.mark.parametrize(("signer", "sender", "strict", "relaxed", "parent"), [
    ("example.com", "example.com", True, True, True),
    ("EXAMPLE.com.", "example.com", True, True, True),
    ("example.com", "eu.example.com", False, True, True),  # d= a parent of From
    ("eu.example.com", "example.com", False, True, False),  # d= a child of From
    ("a.example.com", "b.example.com", False, True, False),  # siblings
    ("example.co.uk", "mail.example.co.uk", False, True, True),
    ("co.uk", "example.co.uk", False, False, False),  # a public suffix speaks for no one
    ("evil.test", "example.com", False, False, False),
    ("notexample.com", "example.com", False, False, False),
    ("bob.github.io", "alice.github.io", False, False, False),
    ("", "example.com", False, False, False),
    ("com", "com", False, False, False),
])
def test_alignment(signer: str, sender: str, strict: bool, relaxed: bool, parent: bool) -> None:
    assert aligned(signer, sender, "strict") is strict
    assert aligned(signer, sender, "relaxed") is relaxed
    assert aligned(signer, sender, "parent") is parent


@pytest.mark.parametrize(("records", "adkim"), [
    ((b"v=DMARC1; p=reject; adkim=s",), "strict"),
    ((b"v=DMARC1;p=none;ADKIM = S ;aspf=s",), "strict"),
    ((b"v=DMARC1; p=none; adkim=r",), "relaxed"),
    ((b"v=DMARC1; p=none",), "relaxed"),  # relaxed is the default
    ((b"v=DMARC1; adkim=x",), "relaxed"),  # an unknown value: the default
    ((b"v=spf1 -all", b"v=DMARC1; adkim=s"), "strict"),  # other TXT records are ignored
    ((), None), ((b"v=spf1 -all",), None),
    ((b"v=DMARC1; adkim=s", b"v=DMARC1; adkim=r"), None),  # two records: none (RFC 7489)
    ((b"V=dmarc1; adkim=s",), None),  # v=DMARC1 is case-sensitive and must come first
])
def test_dmarc_records(records: tuple[bytes, ...], adkim: str | None) -> None:
    found = parse_dmarc(records, "example.com")
    assert (found.adkim if found else None) == adkim
    if found:
        assert found == Dmarc("example.com", found.adkim)


def test_dmarc_is_looked_up_at_the_from_domain_then_its_organisation() -> None:
    assert dmarc_names("a.b.Example.co.uk") == ("_dmarc.a.b.example.co.uk",
                                                "_dmarc.example.co.uk")
    assert dmarc_names("example.com") == ("_dmarc.example.com",)
    assert dmarc_names("com") == ("_dmarc.com",)
