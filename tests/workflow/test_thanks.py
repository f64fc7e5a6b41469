"""A thank-you on a resolved ticket is recorded, not a reopen (workflow/thanks.py)."""

from __future__ import annotations

import pytest

from daemon.workflow.thanks import just_thanks

THANKS = [
    "Thanks!",
    "Thank you, VPN works again for all of us.\n\nBest regards,\nDana",
    "Works now, cheers",
    "Great, thx",
    "Perfect, no worries and thanks for the quick help.",
    "Vielen Dank, funktioniert.",
    "Hi,\n\nall good now, much appreciated!\n\nDana",
]
NOT_THANKS = [
    "",  # an empty reply (an attachment?) may show the error: reopen
    "Thanks, but it is still broken.",
    "Thanks! It broke again this morning.",
    "Thank you. Does this also fix the Mac clients?",
    "Thanks, but I can't connect from home.",
    "Thanks, the error is back: TLS handshake failed",
    "Danke, aber es geht wieder nicht.",
    "Please call me.",  # no thanks, no confirmation: something else, so a reopen
    "thanks " * 60,  # too long to be only a thank-you
]


@pytest.mark.parametrize("text", THANKS)
def test_a_plain_thank_you(text: str) -> None:
    assert just_thanks(text)


@pytest.mark.parametrize("text", NOT_THANKS)
def test_anything_more_is_not_just_thanks(text: str) -> None:
    assert not just_thanks(text)
