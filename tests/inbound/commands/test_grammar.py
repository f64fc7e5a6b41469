"""The tag grammar, pure: every tag's arguments, several per mail in order, mistakes with
the right syntax, and "did you mean"."""

from __future__ import annotations

import pytest

from daemon.workflow.commands import Mistake, Request, Vocabulary, parse, syntax
from daemon.workflow.tags import find_tags

VOCABULARY = Vocabulary(
    commands=("escalate", "deescalate", "vendor", "wait", "resolve", "reopen", "take", "assign",
              "priority", "note", "status", "help", "callback", "route"),
    states=("triage", "tier1", "tier2", "tier3", "vendor", "waiting_on_customer", "resolved"),
    priorities=("P1", "P2", "P3", "P4"),
    vendors=("vpnco", "acme"),
)


def one(line: str) -> Request | Mistake:
    (parsed,) = parse(find_tags(line).commands, VOCABULARY)
    return parsed


def request(line: str) -> tuple[str, str, str | None]:
    parsed = one(line)
    assert isinstance(parsed, Request), parsed
    return parsed.name, parsed.argument, parsed.target


@pytest.mark.parametrize(("line", "expected"), [
    ("#take", ("take", "", None)),
    ("#TAKE", ("take", "", None)),
    ("#assign Morgan Lee", ("assign", "", "Morgan Lee")),
    ("#assign to morgan.lee@example.com", ("assign", "", "morgan.lee@example.com")),
    ("#escalate", ("escalate", "", None)),
    ("#escalate needs a network engineer", ("escalate", "needs a network engineer", None)),
    ("#Escalate TO Tier3 needs a network engineer",
     ("escalate", "needs a network engineer", "tier3")),
    ("#escalate to tier2", ("escalate", "", "tier2")),
    ("#escalate to save time", ("escalate", "to save time", None)),
    ("#deescalate", ("deescalate", "", None)),
    ("#deescalate to tier1 a password reset", ("deescalate", "a password reset", "tier1")),
    ("#priority p1", ("priority", "", "P1")),
    ("#priority P2 whole floor affected", ("priority", "whole floor affected", "P2")),
    ("#vendor acme", ("vendor", "", "acme")),
    ("#vendor VPNCo: is the gateway patched?", ("vendor", "is the gateway patched?", "vpnco")),
    ("#wait", ("wait", "", None)),
    ("#wait which laptop is it?", ("wait", "which laptop is it?", None)),
    ("#resolve: replaced the dock", ("resolve", "replaced the dock", None)),
    ("#reopen", ("reopen", "", None)),
    ("#note called the user, no answer", ("note", "called the user, no answer", None)),
    ("#status", ("status", "", None)),
    ("#help", ("help", "", None)),
    ("#callback to tier2 call at 3pm", ("callback", "call at 3pm", "tier2")),
    ("#route tier1", ("route", "", "tier1")),
    ("#Route TIER2 the gateway logs point at the network", (
        "route", "the gateway logs point at the network", "tier2")),
    ("#route to tier3", ("route", "", "tier3")),
    ("#route tier1: a printer driver", ("route", "a printer driver", "tier1")),
])
def test_every_tag(line: str, expected: tuple[str, str, str | None]) -> None:
    assert request(line) == expected


@pytest.mark.parametrize(("line", "why", "right"), [
    ("#resolve", "#resolve needs a summary", "#resolve <summary>"),
    ("#note", "#note needs the text to note", "#note <text>"),
    ("#assign", "#assign needs a member", "#assign <member>"),
    ("#priority urgent", "#priority needs one of P1, P2, P3, P4", "#priority P1..P4 [reason]"),
    ("#priority", "#priority needs one of", "#priority P1..P4"),
    ("#vendor", "#vendor needs a vendor; known vendors: vpnco, acme", "#vendor <name>"),
    ("#vendor acne x", "there is no vendor 'acne'; did you mean acme?", "#vendor <name>"),
    ("#vendor zzz", "there is no vendor 'zzz'; known vendors: vpnco, acme", "#vendor <name>"),
    ("#escalate to tier4", "there is no tier 'tier4'; did you mean tier", "#escalate [to <tier>]"),
    # #route names its tier: without one, the first destination would be a silent guess.
    ("#route", "#route needs the tier to send the ticket to, e.g. #route tier1",
     "#route <tier> [reason]"),
    ("#route to", "#route needs the tier", "#route <tier>"),
    ("#route tier 1", "there is no tier 'tier'; did you mean tier", "#route <tier>"),
    ("#route printers", "there is no tier 'printers'; known: triage, tier1", "#route <tier>"),
])
def test_mistakes_say_why_and_how(line: str, why: str, right: str) -> None:
    parsed = one(line)
    assert isinstance(parsed, Mistake)
    assert why in parsed.reason and parsed.syntax.startswith(right)


@pytest.mark.parametrize(("line", "guess"), [
    ("#esclate to tier3", "escalate"), ("#Escalte", "escalate"), ("#resolv fixed", "resolve"),
    ("#nte internal", "note"), ("#tkae", "take"), ("#deesclate", "deescalate"),
])
def test_did_you_mean(line: str, guess: str) -> None:
    parsed = one(line)
    assert isinstance(parsed, Mistake) and parsed.suggestion == guess
    assert f"did you mean #{guess}?" in parsed.reason and parsed.syntax == syntax(guess)


def test_no_guess_lists_the_commands() -> None:
    parsed = one("#frobnicate now")
    assert isinstance(parsed, Mistake) and parsed.suggestion is None
    assert "known commands: #escalate" in parsed.reason and parsed.written == "#frobnicate now"


def test_several_in_order_with_their_lines() -> None:
    scan = find_tags("Hi,\n#take\n#priority P2\nLooking at it.\n#esclate\n#note dock is dead")
    parsed = parse(scan.commands, VOCABULARY)
    assert [(p.name, p.line_no, type(p).__name__) for p in parsed] == [
        ("take", 2, "Request"), ("priority", 3, "Request"), ("esclate", 5, "Mistake"),
        ("note", 6, "Request")]
    assert scan.text == "Hi,\nLooking at it."


def test_unknown_workflow_command_names_follow_the_workflow() -> None:
    """A workflow without #vendor does not know the tag, whatever the grammar knows."""
    parsed = parse(find_tags("#vendor acme").commands, Vocabulary(commands=("take",)))
    assert isinstance(parsed[0], Mistake) and "not a command" in parsed[0].reason


@pytest.mark.parametrize(("line", "argument", "options"), [
    ("#vendor vpnco +attachments", "", {"attachments"}),
    ("#vendor vpnco", "", set()),
    ("#vendor VPNCo: +Attachments is it patched?", "is it patched?", {"attachments"}),
    ("#vendor vpnco is it patched? +attachments", "is it patched?", {"attachments"}),
    ("#vendor +attachments vpnco", "", {"attachments"}),
    ("#vendor vpnco call +49 30 1234", "call +49 30 1234", set()),  # a number is text
])
def test_vendor_options_never_reach_the_text(line: str, argument: str,
                                             options: set[str]) -> None:
    parsed = one(line)
    assert isinstance(parsed, Request), parsed
    assert (parsed.target, parsed.argument, set(parsed.options)) == ("vpnco", argument, options)
    assert parsed.written == line


def test_an_unknown_option_is_a_mistake_with_a_guess() -> None:
    parsed = one("#vendor vpnco +attachment")
    assert isinstance(parsed, Mistake)
    assert parsed.reason.startswith("+attachment is not an option")
    assert parsed.suggestion == "+attachments"
    assert parsed.syntax == "#vendor <name> [+attachments] [what to ask]"


def test_tags_without_options_keep_plus_words_as_text() -> None:
    assert request("#note +attachments kept") == ("note", "+attachments kept", None)
