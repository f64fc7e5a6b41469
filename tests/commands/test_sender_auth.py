"""Sender authentication, pure: RFC 8601 Authentication-Results as our server writes them,
which headers count, alignment, and signed reply address tokens."""

from __future__ import annotations

import pytest

from daemon.sender_auth import (
    AuthPolicy,
    Claim,
    aligned,
    authenticate,
    parse_authentication_results,
    sign,
    signed_address,
    token_valid,
    trusted_results,
)

SECRET = "k" * 40
OURS = frozenset({"mx.example.com"})
POLICY = AuthPolicy(OURS, 1, SECRET)
ROBIN = "robin.okafor@example.com"


def claim(*headers: str, tokens: tuple[str, ...] = (), sender: str = ROBIN,
          ref: str = "TD-5") -> Claim:
    return Claim(sender, headers, tokens, ref, ROBIN)


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

def test_token_is_short_lower_case_and_bound_to_ticket_member_and_secret() -> None:
    token = sign("TD-5", ROBIN, SECRET)
    assert len(token) == 20 and token == token.lower() and token.isalnum()
    assert sign("td-5", ROBIN.upper(), SECRET) == token
    assert len({token, sign("TD-6", ROBIN, SECRET), sign("TD-5", "x@example.com", SECRET),
                sign("TD-5", ROBIN, SECRET + "x")}) == 4


def test_token_check() -> None:
    token = sign("TD-5", ROBIN, SECRET)
    assert token_valid(token.upper(), "TD-5", ROBIN, SECRET)
    assert not token_valid(token[:-1] + ("a" if token[-1] != "a" else "b"), "TD-5", ROBIN, SECRET)
    assert not token_valid(token, "TD-5", ROBIN, "")
    assert not token_valid("", "TD-5", ROBIN, SECRET)


def test_signed_address() -> None:
    assert signed_address("support@example.com", "example.com", "TD-5", "abc") == \
        "support+TD-5.abc@example.com"


def test_a_signed_address_passes_without_headers() -> None:
    verdict = authenticate(claim(tokens=(sign("TD-5", ROBIN, SECRET),)), POLICY)
    assert verdict.ok and "signed reply address" in verdict.how


def test_a_token_for_another_ticket_or_member_fails() -> None:
    for token in (sign("TD-6", ROBIN, SECRET), sign("TD-5", "morgan.lee@example.com", SECRET)):
        verdict = authenticate(claim(tokens=(token,)), POLICY)
        assert not verdict.ok and "not valid for TD-5" in verdict.how


def test_tokens_are_refused_when_no_secret_is_set() -> None:
    verdict = authenticate(claim(tokens=(sign("TD-5", ROBIN, ""),)), AuthPolicy(OURS))
    assert not verdict.ok and "not configured" in verdict.how


@pytest.mark.parametrize("header", [
    "https://evil.example/reset?now; dmarc=pass header.from=example.com",
    '"click here to keep your account"; dmarc=pass header.from=example.com',
])
def test_names_from_the_mail_are_quoted_only_when_they_look_like_names(header: str) -> None:
    verdict = authenticate(claim(header), POLICY)
    assert not verdict.ok and "header is from (unreadable), not from our mail server" in verdict.how
