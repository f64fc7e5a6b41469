"""Our own DKIM check on real stores, against a real (tiny) DNS server on 127.0.0.1: a member
whose mail is signed by the From domain runs commands without a signed address and without
any Authentication-Results (this site trusts none), and everything else is refused saying
why. DNS is asked only for members' mail, once per key while its TTL lasts."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from daemon.auth.dkim_check import DkimVerifier
from daemon.inbound.ingest import Inbox
from daemon.site.config import Config, load_config
from daemon.store.database import Database
from daemon.tickets.runtime import Runtime
from tests.inbound.commands.desk import (
    MORGAN,
    ROOT,
    SECRET,
    SUPPORT,
    T0,
    build_inbox,
    events,
    feed,
    later,
    open_in,
    outbox,
    requester_mail,
    signed,
    tech,
    ticket,
)
from tests.inbound.commands.dkim_mail import (
    ED_SELECTOR,
    dkim_sign,
    ed25519_record,
    ed25519_sign,
    key_name,
    key_record,
)
from tests.inbound.commands.dns_stub import NEGATIVE_TTL, StubDns

ORDER = "#resolve the printer works again\nHi Ann, all done."
KEY = key_name("example.com")


@pytest.fixture
def dns() -> Iterator[StubDns]:
    server = StubDns().start()
    for domain in ("example.com", "mail.example.com", "evil.test"):
        server.publish(key_name(domain), key_record(), ttl=300)
    yield server
    server.stop()


def site(dns: StubDns, timeout: str = "1s") -> Config:
    """The shipped config, trusting no Authentication-Results, asking only the stub."""
    return load_config(ROOT, {"TIERDESK_AUTH_SECRET": SECRET,
                              "TIERDESK_AUTH_TRUSTED_AUTHSERV_IDS": "",
                              "TIERDESK_AUTH_DNS_SERVERS": dns.address,
                              "TIERDESK_AUTH_DNS_TIMEOUT": timeout})


@pytest.fixture
def inbox(dns: StubDns) -> Inbox:
    return build_inbox(site(dns))


def member(body: str = ORDER, signer: str = "example.com", *, length: bool = False,
           to: str = SUPPORT) -> bytes:
    """Morgan's reply on TD-1 (to plain support@ unless `to`), with no Authentication-Results,
    signed by `signer`."""
    return dkim_sign(tech(MORGAN, body, auth=None, to=to), signer, length=length)


def refused(database: Database, *why: str) -> str:
    """Nothing ran; the security event and the member's notice both say `why`."""
    assert ticket(database).state == "tier2"
    [security] = events(database, "security")
    [notice] = [s for s in outbox(database) if s.template == "command_refused"]
    for words in why:
        assert words in security.reason and words in notice.text
    return security.reason


def test_an_aligned_signature_by_the_from_domain_runs_the_command(
        database: Database, inbox: Inbox, dns: StubDns) -> None:
    open_in(database, inbox, "tier2")
    outcome = feed(database, inbox, member(), later(5))
    assert "dkim=pass for example.com (d=example.com), checked by us" in outcome.detail
    assert ticket(database).state == "resolved"
    assert events(database, "security") == []
    assert dns.queries == {KEY: 1}  # d= is the From domain: no DMARC record needed


def test_an_ed25519_signature_runs_the_command(database: Database, inbox: Inbox,
                                               dns: StubDns) -> None:
    """RFC 8463 keys, which some senders publish beside their RSA key."""
    dns.publish(key_name("example.com", ED_SELECTOR), ed25519_record(), ttl=300)
    open_in(database, inbox, "tier2")
    raw = ed25519_sign(tech(MORGAN, ORDER, auth=None), "example.com")
    assert b"a=ed25519-sha256" in raw
    outcome = feed(database, inbox, raw, later(5))
    assert "dkim=pass for example.com (d=example.com), checked by us" in outcome.detail
    assert ticket(database).state == "resolved"


def test_a_signature_by_another_domain_is_refused_without_asking_dns(
        database: Database, inbox: Inbox, dns: StubDns) -> None:
    open_in(database, inbox, "tier2")
    feed(database, inbox, member(signer="evil.test"), later(5))
    refused(database, "its DKIM signature by evil.test does not count: it is not aligned "
            "with example.com", "not sent to your signed reply address",
            "no Authentication-Results header from our mail server")
    assert dns.queries == {}  # alignment first: a foreign key is never fetched


def test_a_body_changed_after_signing_is_refused(database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    raw = member("#take\nHi Ann.").replace(b"#take", b"#resolve")
    feed(database, inbox, raw, later(5))
    refused(database, "the body was changed after signing")


def test_text_after_an_l_signature_is_refused(database: Database, inbox: Inbox) -> None:
    """Whoever handled the mail after signing appended a command the signer never wrote."""
    open_in(database, inbox, "tier2")
    raw = member("Hi Ann, looking into it.", length=True) + b"#resolve\r\n"
    feed(database, inbox, raw, later(5))
    reason = refused(database, "(l=")
    assert "unsigned" in reason


def test_only_whitespace_after_an_l_signature_is_accepted(database: Database,
                                                         inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    raw = member(ORDER, length=True) + b"\r\n  \r\n\t\r\n"
    assert "checked by us" in feed(database, inbox, raw, later(5)).detail
    assert ticket(database).state == "resolved"


def test_strict_alignment_refuses_a_subdomain(database: Database, inbox: Inbox,
                                              dns: StubDns) -> None:
    dns.publish("_dmarc.example.com", b"v=DMARC1; p=reject; adkim=s", ttl=300)
    open_in(database, inbox, "tier2")
    feed(database, inbox, member(signer="mail.example.com"), later(5))
    refused(database, "the DMARC record of example.com asks for strict alignment (adkim=s)")
    assert dns.queries == {"_dmarc.example.com": 1}  # the key was not needed


def test_relaxed_alignment_accepts_a_subdomain_of_the_organisation(
        database: Database, inbox: Inbox, dns: StubDns) -> None:
    dns.publish("_dmarc.example.com", b"v=DMARC1; p=none", ttl=300)
    open_in(database, inbox, "tier2")
    outcome = feed(database, inbox, member(signer="mail.example.com"), later(5))
    assert "dkim=pass for example.com (d=mail.example.com)" in outcome.detail
    assert ticket(database).state == "resolved"


def test_without_dmarc_a_subdomain_signature_does_not_speak_for_the_parent(
        database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    feed(database, inbox, member(signer="mail.example.com"), later(5))
    refused(database, "is neither example.com nor a parent domain of it")


def test_a_dns_timeout_refuses_the_mail_and_ingest_goes_on(database: Database,
                                                           dns: StubDns) -> None:
    inbox = build_inbox(site(dns, timeout="300ms"))
    dns.silent.add(KEY)
    open_in(database, inbox, "tier2")
    started = time.monotonic()
    outcome = feed(database, inbox, member(), later(5))
    assert time.monotonic() - started < 2  # the budget, not a stall
    assert outcome.action == "updated"
    refused(database, f"DNS lookup of {KEY} timed out after 0.3s")
    # The next mail is processed as usual: a new ticket, and a command by signed address.
    assert feed(database, inbox, requester_mail("Scanner offline"), later(6)).action == "opened"
    raw = tech(MORGAN, "#take", auth=None, to=signed(MORGAN))
    assert "1 done" in feed(database, inbox, raw, later(7)).detail
    assert dns.queries == {KEY: 1}  # the signed address needed no DNS


def test_servfail_refuses_the_mail_naming_the_lookup(database: Database, inbox: Inbox,
                                                     dns: StubDns) -> None:
    dns.servfail.add(KEY)
    open_in(database, inbox, "tier2")
    feed(database, inbox, member(), later(5))
    refused(database, f"DNS lookup of {KEY} failed (SERVFAIL)")


def test_the_key_is_cached_for_its_ttl(database: Database, inbox: Inbox,
                                       dns: StubDns) -> None:
    open_in(database, inbox, "tier2")
    feed(database, inbox, member("#take"), later(1))
    feed(database, inbox, member("#priority P2"), later(2))
    assert dns.queries == {KEY: 1}  # the second mail asked no DNS
    assert (ticket(database).assignee, ticket(database).priority) == (MORGAN, "P2")
    feed(database, inbox, member("#status"), later(1) + timedelta(seconds=301))
    assert dns.queries == {KEY: 2}  # its TTL (300 s) ran out on the clock we pass


def test_no_dns_for_a_non_member_or_a_signed_address(database: Database, inbox: Inbox,
                                                     dns: StubDns) -> None:
    """A requester's signed mail without commands, and a member's mail to their signed
    address (signed by DKIM too), ask DNS nothing."""
    feed(database, inbox, dkim_sign(requester_mail(), "example.com"))
    feed(database, inbox, dkim_sign(tech("ann@example.org", "Thanks!", auth=None),
                                    "example.com"), later(1))
    raw = member("#take", to=signed(MORGAN))
    assert "(signed reply address for TD-1)" in feed(database, inbox, raw, later(2)).detail
    assert dns.queries == {}


def test_dkim_off_asks_no_dns_and_says_so(database: Database, dns: StubDns) -> None:
    inbox = build_inbox(load_config(ROOT, {"TIERDESK_AUTH_SECRET": SECRET,
                                           "TIERDESK_AUTH_TRUSTED_AUTHSERV_IDS": "",
                                           "TIERDESK_AUTH_DNS_SERVERS": dns.address,
                                           "TIERDESK_AUTH_DKIM": "false"}))
    assert inbox.runtime.dkim is None
    open_in(database, inbox, "tier2")
    feed(database, inbox, member(), later(5))
    refused(database, "DKIM signatures are not checked on this site (auth.dkim)")
    assert dns.queries == {}


def test_a_reload_keeps_the_cached_keys_unless_dns_settings_change(
        database: Database, inbox: Inbox, dns: StubDns) -> None:
    open_in(database, inbox, "tier2")
    feed(database, inbox, member("#take"), later(1))
    reloaded = Runtime.build(site(dns), previous=inbox.runtime)
    assert reloaded.dkim is inbox.runtime.dkim  # SIGHUP: the key is not fetched again
    feed(database, Inbox.build(reloaded), member("#priority P2"), later(2))
    assert dns.queries == {KEY: 1} and ticket(database).priority == "P2"
    changed = Runtime.build(site(dns, timeout="2s"), previous=inbox.runtime)
    assert changed.dkim is not None and changed.dkim is not inbox.runtime.dkim


# ------------------------------------------------------------------ the verifier alone

def verifier(dns: StubDns) -> DkimVerifier:
    return DkimVerifier.build((dns.address,), timedelta(seconds=1))


def test_a_parent_signature_speaks_for_a_subdomain_without_dmarc(dns: StubDns) -> None:
    """From eu.example.com, d=example.com: whoever holds example.com holds eu.example.com."""
    raw = dkim_sign(tech("kim@eu.example.com", "#take", auth=None), "example.com")
    verdict = verifier(dns).check(raw, "eu.example.com", T0)
    assert verdict.ok and "d=example.com" in verdict.how
    # Looked for the From domain's record, then the organisational domain's: none.
    assert dns.queries == {"_dmarc.eu.example.com": 1, "_dmarc.example.com": 1, KEY: 1}


def test_the_organisational_record_applies_to_a_subdomain(dns: StubDns) -> None:
    dns.publish("_dmarc.example.com", b"v=DMARC1; p=quarantine; adkim=s")
    raw = dkim_sign(tech("kim@eu.example.com", "#take", auth=None), "example.com")
    verdict = verifier(dns).check(raw, "eu.example.com", T0)
    assert not verdict.ok and "the DMARC record of example.com asks for strict" in verdict.how


def test_a_missing_key_is_cached_briefly(dns: StubDns) -> None:
    check = verifier(dns)
    raw = dkim_sign(tech(MORGAN, "#take", auth=None), "example.com", selector="gone")
    for at in (T0, T0 + timedelta(seconds=NEGATIVE_TTL - 1)):
        verdict = check.check(raw, "example.com", at)
        assert "no DKIM key is published at gone._domainkey.example.com" in verdict.how
    assert dns.queries == {"gone._domainkey.example.com": 1}
    check.check(raw, "example.com", T0 + timedelta(seconds=NEGATIVE_TTL))
    assert dns.queries == {"gone._domainkey.example.com": 2}


def test_of_several_signatures_an_aligned_valid_one_counts(dns: StubDns) -> None:
    """A mailing service's signature on top, the domain's own below it."""
    raw = dkim_sign(dkim_sign(tech(MORGAN, "#take", auth=None), "example.com"), "evil.test")
    assert verifier(dns).check(raw, "example.com", T0).ok
    no = dkim_sign(dkim_sign(tech(MORGAN, "#take", auth=None), "evil.test"), "evil.test")
    verdict = verifier(dns).check(no, "example.com", T0)
    assert not verdict.ok and verdict.how.startswith("none of its 2 DKIM signatures counts")


def test_an_unsigned_mail_needs_no_dns(dns: StubDns) -> None:
    verdict = verifier(dns).check(tech(MORGAN, "#take", auth=None), "example.com", T0)
    assert (verdict.ok, verdict.how, dns.queries) == (False, "it has no DKIM signature", {})


def test_a_signature_that_does_not_sign_from_is_refused(dns: StubDns) -> None:
    """dkimpy will not sign without From; the header list is edited (the h= of a
    signature made by someone else's software)."""
    raw = tech(MORGAN, "#take", auth=None)
    signature = dkim_sign(raw, "example.com")[: -len(raw)]
    edited = re.sub(rb"h=from :", b"h=", signature)
    assert edited != signature
    verdict = verifier(dns).check(edited + raw, "example.com", T0)
    assert not verdict.ok and "it does not sign the From header" in verdict.how
    assert dns.queries == {}


def test_a_surprise_inside_the_check_refuses_instead_of_raising(dns: StubDns) -> None:
    """Whatever a library raises, the mail is refused with a reason, never dropped."""
    broken = DkimVerifier(None, timedelta(seconds=1))  # type: ignore[arg-type]
    verdict = broken.check(dkim_sign(tech(MORGAN, "#take", auth=None), "example.com"),
                           "example.com", T0)
    assert (verdict.ok, verdict.how) == (
        False, "its DKIM signature could not be checked (AttributeError)")
