"""The order of proof in sender_auth.authenticate, pure (the DKIM verifier is a stand-in):
signed address first (no I/O), then our own DKIM check, then a trusted Authentication-Results;
a refusal says why each did not count."""

from __future__ import annotations

from datetime import date

from daemon.auth.sender_auth import AuthPolicy, Claim, Verdict, authenticate, sign

SECRET = "k" * 40
ROBIN = "robin.okafor@example.com"
OURS = frozenset({"mx.example.com"})
PASS = "mx.example.com; dmarc=pass header.from=example.com"


class Verifier:
    """Records what it was asked; answers `verdict`."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        self.asked: list[tuple[bytes, str]] = []

    def __call__(self, raw: bytes, from_domain: str) -> Verdict:
        self.asked.append((raw, from_domain))
        return self.verdict


def claim(*headers: str, tokens: tuple[str, ...] = ()) -> Claim:
    return Claim("Robin.Okafor@EXAMPLE.com", headers, tokens, "TD-5", ROBIN, raw=b"raw mail")


def test_a_signed_address_needs_no_dkim_check() -> None:
    dkim = Verifier(Verdict(True, "dkim"))
    verdict = authenticate(claim(tokens=(sign("TD-5", ROBIN, SECRET, date(2026, 6, 1)),)),
                           AuthPolicy(OURS, 1, SECRET, dkim=dkim))
    assert verdict.ok and "signed reply address" in verdict.how and dkim.asked == []


def test_our_dkim_check_comes_before_the_header() -> None:
    dkim = Verifier(Verdict(True, "dkim=pass for example.com (d=example.com), checked by us"))
    verdict = authenticate(claim(PASS), AuthPolicy(OURS, 1, SECRET, dkim=dkim))
    assert verdict.how.endswith("checked by us")
    assert dkim.asked == [(b"raw mail", "example.com")]  # the From domain, lower-cased


def test_a_failed_dkim_check_leaves_the_header() -> None:
    dkim = Verifier(Verdict(False, "it has no DKIM signature"))
    verdict = authenticate(claim(PASS), AuthPolicy(OURS, 1, SECRET, dkim=dkim))
    assert verdict.ok and "by mx.example.com" in verdict.how


def test_a_refusal_says_why_each_method_did_not_count_in_order() -> None:
    dkim = Verifier(Verdict(False, "it has no DKIM signature"))
    verdict = authenticate(claim(), AuthPolicy(OURS, 1, SECRET, dkim=dkim))
    assert not verdict.ok
    assert verdict.how == ("it was not sent to your signed reply address; it has no DKIM "
                           "signature; it has no Authentication-Results header from our mail "
                           "server (mx.example.com)")


def test_without_a_verifier_dkim_is_said_to_be_off() -> None:
    verdict = authenticate(claim(), AuthPolicy(OURS, 1, SECRET))
    assert "DKIM signatures are not checked on this site (auth.dkim)" in verdict.how
