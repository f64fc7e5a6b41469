"""Thread keys: replied-to Message-IDs, [TD-n] subject tags, support+TD-n plus-addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.mail.message import parse_message
from daemon.mail.thread_keys import PlusRef, ThreadKeys, base_subject, subject_refs, thread_keys

MAILS = Path(__file__).parents[1] / "mails"
SUPPORT = "support@example.com"


def keys_of(name: str, support: str = SUPPORT, domains: tuple[str, ...] = ()) -> ThreadKeys:
    return thread_keys(parse_message((MAILS / name).read_bytes()), support, domains)


def test_in_reply_to_first_then_references_newest_first() -> None:
    keys = keys_of("gmail_reply.eml")
    assert keys.message_ids == ("td-out-12-2.d4e5f6@example.com",
                                "CAF=k2Vv1q8Jd8xHn0tY4uZ_p3QmE@mail.gmail.com",
                                "td-out-12-1.a1b2c3@example.com")
    assert keys.subject_refs == ("TD-12",) and keys.plus_refs == ()
    assert not keys.empty


def test_messy_headers_and_odd_tag() -> None:
    keys = keys_of("messy_references.eml")
    # Newest first; an id whose domain a mailer upper-cased is also looked up with the
    # domain in lower case (never the local part: that is case-sensitive).
    assert keys.message_ids == ("td-out-12-2.d4e5f6@example.com",
                                "TD-OUT-12-1.A1B2C3@EXAMPLE.COM",
                                "TD-OUT-12-1.A1B2C3@example.com",
                                "CAF=k2Vv1q8Jd8xHn0tY4uZ_p3QmE@mail.gmail.com",
                                "td-out-12-1.a1b2c3@example.com")
    assert keys.subject_refs == ("TD-12",)  # "[td-0012]"


def test_signed_plus_address_from_to_and_delivered_to() -> None:
    keys = keys_of("plus_address_reply.eml")
    assert keys.message_ids == () and keys.subject_refs == ()
    assert keys.plus_refs == (PlusRef("TD-21", "k7x2mq9f", "support+TD-21.k7x2mq9f@example.com"),)


def test_plus_address_and_subject_together() -> None:
    keys = keys_of("gmail_wrapped_attribution.eml")
    assert keys.subject_refs == ("TD-23",)
    assert [(p.ref, p.token) for p in keys.plus_refs] == [("TD-23", "q4m8x2")]


def test_new_mail_has_no_keys() -> None:
    assert keys_of("new_ticket_latin1.eml").empty


@pytest.mark.parametrize(("subject", "refs"), [
    ("Re: [TD-12] VPN", ("TD-12",)),
    ("AW: [TD-12] VPN", ("TD-12",)),
    ("SV: [TD-12] VPN", ("TD-12",)),
    ("VS: [TD-12] VPN", ("TD-12",)),
    ("Réf : [TD-12] VPN", ("TD-12",)),
    ("回复：[TD-12] 打印机", ("TD-12",)),
    ("RE: Fwd: [td-12] VPN", ("TD-12",)),
    ("Re: VPN [TD-12]", ("TD-12",)),
    ("［TD-12］ full-width brackets", ("TD-12",)),
    ("[ TD-007 ] spaced", ("TD-7",)),
    ("[TD-5] merged into [TD-7] and [TD-5]", ("TD-5", "TD-7")),
    ("TD-12 without brackets", ()),
    ("[TD-] [TD-x] [XTD-3]", ()),
])
def test_subject_refs(subject: str, refs: tuple[str, ...]) -> None:
    assert subject_refs(subject) == refs


def _keys_for_recipients(to: str, extra: str = "",
                         domains: tuple[str, ...] = ()) -> tuple[PlusRef, ...]:
    raw = f"From: a@b.example\nTo: {to}\n{extra}\nbody\n".encode()
    return thread_keys(parse_message(raw), SUPPORT, domains).plus_refs


@pytest.mark.parametrize(("to", "expected"), [
    ("support+TD-5@example.com", [("TD-5", None)]),
    ("Support+td-05@EXAMPLE.com", [("TD-5", None)]),
    ("support+TD-5.AbC-9_z@example.com", [("TD-5", "AbC-9_z")]),
    ("support+TD-5@other.example", []),
    ("helpdesk+TD-5@example.com", []),
    ("support+newsletter@example.com", []),
    ("support+TD-5.bad.token@example.com", []),
    ("support@example.com", []),
    ("a@x.example, support+TD-5@example.com, support+TD-6@example.com",
     [("TD-5", None), ("TD-6", None)]),
])
def test_plus_addresses(to: str, expected: list[tuple[str, str | None]]) -> None:
    assert [(p.ref, p.token) for p in _keys_for_recipients(to)] == expected


def test_plus_address_in_cc_and_envelope_headers_once() -> None:
    refs = _keys_for_recipients("a@x.example", "Cc: support+TD-8@example.com\n"
                                "X-Original-To: support+td-8@example.com\n"
                                "Envelope-To: support+TD-9.tok@example.com\n")
    assert [(p.ref, p.token, p.address) for p in refs] == [
        ("TD-8", None, "support+TD-8@example.com"),
        ("TD-9", "tok", "support+TD-9.tok@example.com")]


def test_site_domain_is_accepted_too() -> None:
    refs = _keys_for_recipients("support+TD-5@mail.example.net", domains=("mail.example.net",))
    assert [p.ref for p in refs] == ["TD-5"]


@pytest.mark.parametrize(("subject", "base"), [
    ("Re: AW: [TD-12] VPN drops", "VPN drops"),
    ("RE[2]: Fwd: printer", "printer"),
    ("回复：[TD-11] 打印机无法连接", "打印机无法连接"),
    ("SV: VS: Réf : Odp: R: WG: TR: hello", "hello"),
    ("Report: weekly", "Report: weekly"),
    ("Printer", "Printer"),
])
def test_base_subject(subject: str, base: str) -> None:
    assert base_subject(subject) == base
