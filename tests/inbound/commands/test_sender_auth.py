"""Sender authentication, pure: RFC 8601 Authentication-Results as our server writes them,
which headers count, alignment, and signed reply address tokens."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from daemon.auth.sender_auth import (
    AuthPolicy,
    Claim,
    aligned,
    authenticate,
    check_token,
    key_id,
    parse_authentication_results,
    sign,
    signed_address,
    trusted_results,
)

SECRET = "k" * 40
OURS = frozenset({"mx.example.com"})
POLICY = AuthPolicy(OURS, 1, SECRET)
ROBIN = "robin.okafor@example.com"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LAST = date(2026, 5, 31)  # what a mail sent at NOW carries: 90 days


def claim(*headers: str, tokens: tuple[str, ...] = (), sender: str = ROBIN,
          ref: str = "TD-5") -> Claim:
    return Claim(sender, headers, tokens, ref, ROBIN, NOW)


# ------------------------------------------------------------------ parsing (RFC 8601 2.2)

def test_parses_authserv_id_version_methods_and_properties() -> None:
    parsed = parse_authentication_results(
        "MX.Example.com 1; (a comment; with a semicolon (nested))\r\n dkim=pass (good signature)"
        ' header.d=example.com header.s="sel;2024"; dmarc = pass (p=reject) '
        "header.from=example.com; spf=pass smtp.mailfrom=alex@example.com")
    assert parsed is not None and parsed.authserv_id == "mx.example.com"
    assert [(r.method, r.result) for r in parsed.results] == [
        ("dkim", "pass"), ("dmarc", "pass"), ("spf", "pass")]
    assert parsed.results[0].properties == {"header.d": "example.com", "header.s": "sel;2024"}


@pytest.mark.parametrize("value", ["mx.example.com; none", '"mx.example.com"; none',
                                   "mx.example.com"])
def test_no_result(value: str) -> None:
    parsed = parse_authentication_results(value)
    assert parsed is not None and parsed.authserv_id == "mx.example.com" and not parsed.results


@pytest.mark.parametrize("value", ["", "   ", "; dkim=pass", "(only a comment)"])
def test_unreadable_headers_are_none(value: str) -> None:
    assert parse_authentication_results(value) is None


def test_method_version_and_reason_are_read_and_dropped() -> None:
    parsed = parse_authentication_results(
        'mx.example.com; dkim/1=pass reason="good sig" header.i=@example.com')
    assert parsed is not None
    [result] = parsed.results
    assert (result.method, result.properties) == ("dkim", {"header.i": "@example.com"})


# ------------------------------------------------------------------ which headers count

def test_only_the_topmost_header_counts_by_default() -> None:
    ours = "mx.example.com; dmarc=fail header.from=example.com"
    forged = "mx.example.com; dmarc=pass header.from=example.com"
    assert len(trusted_results([ours, forged], OURS, 1)) == 1
    assert not authenticate(claim(ours, forged), POLICY).ok


def test_a_forged_header_below_a_foreign_one_never_counts() -> None:
    foreign = "mx.evil.example; dmarc=pass header.from=example.com"
    forged = "mx.example.com; dmarc=pass header.from=example.com"
    assert trusted_results([foreign, forged], OURS, 5) == ()
    verdict = authenticate(claim(foreign, forged), AuthPolicy(OURS, 5, SECRET))
    assert not verdict.ok and "mx.evil.example" in verdict.how


def test_several_headers_of_ours_when_allowed() -> None:
    dkim = "mx.example.com; dkim=pass header.d=example.com"
    dmarc = "mx.example.com; dmarc=none header.from=example.com"
    assert not authenticate(claim(dmarc, dkim), POLICY).ok
    assert authenticate(claim(dmarc, dkim), AuthPolicy(OURS, 2, SECRET)).ok


def test_valid_results_from_an_untrusted_server_are_refused() -> None:
    verdict = authenticate(claim("mx.google.com; dkim=pass header.d=example.com; "
                                 "dmarc=pass header.from=example.com"), POLICY)
    assert not verdict.ok
    assert "mx.google.com, not from our mail server (mx.example.com)" in verdict.how


def test_no_header_at_all() -> None:
    verdict = authenticate(claim(), POLICY)
    assert not verdict.ok and "no Authentication-Results header" in verdict.how


# ------------------------------------------------------------------ what a pass is

@pytest.mark.parametrize(("header", "ok"), [
    ("mx.example.com; dmarc=pass header.from=example.com", True),
    ("mx.example.com; dmarc=pass header.from=EXAMPLE.com", True),
    ("mx.example.com; dmarc=pass", False),  # which domain passed is not said
    ("mx.example.com; dmarc=pass header.from=evil.example", False),
    ("mx.example.com; dmarc=fail header.from=example.com", False),
    ("mx.example.com; dkim=pass header.d=example.com", True),
    ("mx.example.com; dkim=pass header.d=mail.example.com", True),
    ("mx.example.com; dkim=pass header.i=@example.com", True),
    ("mx.example.com; dkim=pass header.i=robin.okafor@example.com", True),
    ("mx.example.com; dkim=pass header.d=evil.example", False),
    ("mx.example.com; dkim=pass header.d=notexample.com", False),
    ("mx.example.com; dkim=pass header.d=com", False),
    ("mx.example.com; dkim=pass", False),
    ("mx.example.com; dkim=neutral header.d=example.com", False),
    ("mx.example.com; spf=pass smtp.mailfrom=example.com", False),  # SPF alone never
    ("mx.example.com; dkim=fail header.d=example.com; dkim=pass header.d=example.com", True),
])
def test_what_counts_as_a_pass(header: str, ok: bool) -> None:
    assert authenticate(claim(header), POLICY).ok is ok


@pytest.mark.parametrize(("signer", "sender", "ok"), [
    ("example.com", "example.com", True), ("eu.example.com", "example.com", True),
    ("example.com", "mail.example.com", True), ("a.example.com", "b.example.com", False),
    ("com", "example.com", False), ("example.com.", "Example.COM", True), ("", "x.org", False),
])
def test_alignment(signer: str, sender: str, ok: bool) -> None:
    assert aligned(signer, sender) is ok


def test_the_reason_names_what_was_seen() -> None:
    verdict = authenticate(claim("mx.example.com; dkim=pass header.d=evil.example; "
                                 "dmarc=fail header.from=example.com"), POLICY)
    assert "dkim=pass (evil.example)" in verdict.how and "dmarc=fail (example.com)" in verdict.how


# ------------------------------------------------------------------ signed reply addresses

def tok(ref: str = "TD-5", member: str = ROBIN, secret: str = SECRET, last: date = LAST) -> str:
    return sign(ref, member, secret, last)


def test_token_is_short_lower_case_and_bound_to_ticket_member_secret_and_day() -> None:
    token = tok()
    assert len(token) == 24 and token == token.lower() and token.isalnum()
    assert sign("td-5", ROBIN.upper(), SECRET, LAST) == token
    assert token[0] == key_id(SECRET) and token[0] != key_id(SECRET + "x")
    assert len({token, tok("TD-6"), tok(member="x@example.com"), tok(secret=SECRET + "x"),
                tok(last=LAST + timedelta(days=1))}) == 5


def test_token_check_reads_the_key_and_the_last_day() -> None:
    token = tok()
    checked = check_token(token.upper(), "TD-5", ROBIN, [SECRET], NOW.date())
    assert checked.ok and checked.last_day == LAST
    assert check_token(token, "TD-5", ROBIN, [SECRET], LAST).ok  # through its last day
    late = check_token(token, "TD-5", ROBIN, [SECRET], LAST + timedelta(days=1))
    assert (late.ok, late.kind) == (False, "expired") and "expired on 2026-05-31" in late.why
    assert "reply to a newer mail" in late.why


def test_a_tampered_token_fails_and_a_moved_day_does_not_extend_it() -> None:
    token = tok()
    flipped = token[:-1] + ("a" if token[-1] != "a" else "b")
    later = token[0] + tok(last=LAST + timedelta(days=300))[1:4] + token[4:]
    for bad in (flipped, later, token[:-1], "", "x" * 24):
        checked = check_token(bad, "TD-5", ROBIN, [SECRET], NOW.date())
        assert not checked.ok and checked.kind in ("invalid", "retired"), bad


def test_rotation_previous_keys_still_work_removed_ones_are_retired() -> None:
    new = "n" * 40
    old_token = tok()
    assert check_token(old_token, "TD-5", ROBIN, [new, SECRET], NOW.date()).ok
    retired = check_token(old_token, "TD-5", ROBIN, [new], NOW.date())
    assert (retired.ok, retired.kind) == (False, "retired")
    assert "no longer holds" in retired.why and "reply to a newer mail" in retired.why


def test_first_version_tokens_never_expired_so_they_are_refused() -> None:
    v1 = "abcdefghij" * 2
    checked = check_token(v1, "TD-5", ROBIN, [SECRET], NOW.date())
    assert (checked.ok, checked.kind) == (False, "outdated") and "newer mail" in checked.why


def test_signed_address() -> None:
    assert signed_address("support@example.com", "example.com", "TD-5", "abc") == \
        "support+TD-5.abc@example.com"


def test_a_signed_address_passes_without_headers() -> None:
    verdict = authenticate(claim(tokens=(tok(),)), POLICY)
    assert verdict.ok and "signed reply address" in verdict.how


def test_a_token_for_another_ticket_or_member_fails() -> None:
    for token in (tok("TD-6"), tok(member="morgan.lee@example.com")):
        verdict = authenticate(claim(tokens=(token,)), POLICY)
        assert not verdict.ok and "not valid for TD-5" in verdict.how
        assert verdict.token == "invalid"


def test_tokens_are_refused_when_no_secret_is_set() -> None:
    verdict = authenticate(claim(tokens=(tok(),)), AuthPolicy(OURS))
    assert not verdict.ok and "not configured" in verdict.how


def test_a_token_stops_working_some_days_after_the_ticket_was_resolved() -> None:
    resolved = NOW + timedelta(days=1)
    for now, ok in ((resolved + timedelta(days=13), True), (resolved + timedelta(days=15), False)):
        verdict = authenticate(replace(claim(tokens=(tok(),)), now=now, resolved_at=resolved),
                               POLICY)
        assert verdict.ok is ok
    assert verdict.token == "expired" and "2026-03-17, 14 days after TD-5 was resolved" \
        in verdict.how


def test_a_token_past_its_last_day_fails_even_on_an_open_ticket() -> None:
    verdict = authenticate(replace(claim(tokens=(tok(),)), now=NOW + timedelta(days=91)), POLICY)
    assert not verdict.ok and verdict.token == "expired"


@pytest.mark.parametrize("header", [
    "https://evil.example/reset?now; dmarc=pass header.from=example.com",
    '"click here to keep your account"; dmarc=pass header.from=example.com',
])
def test_names_from_the_mail_are_quoted_only_when_they_look_like_names(header: str) -> None:
    verdict = authenticate(claim(header), POLICY)
    assert not verdict.ok and "header is from (unreadable), not from our mail server" in verdict.how
