"""Command tags: found in the new text only, never in quoted history or signatures."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.mail.message import parse_message
from daemon.workflow.tags import Command, find_tags

MAILS = Path(__file__).parents[1] / "mails"


def test_tags_are_split_and_removed() -> None:
    scan = find_tags("Hi,\n\n#take\n#Escalate to tier3 needs a network engineer\n\n"
                     "The port is dead.\n  #resolve:  replaced the port  \nThanks")
    assert scan.commands == (
        Command("take", "", 3),
        Command("escalate", "to tier3 needs a network engineer", 4),
        Command("resolve", "replaced the port", 7),
    )
    assert scan.text == "Hi,\n\nThe port is dead.\nThanks"


@pytest.mark.parametrize("line", [
    "see issue #123", "#123", "# heading", "#tag,", "##take", "text #take", "#", "#-x",
    "https://example.com/#take",
])
def test_not_tags(line: str) -> None:
    scan = find_tags(line)
    assert scan.commands == () and scan.text == line


def test_mistyped_tags_are_still_found() -> None:
    assert find_tags("#esclate to tier2").commands == (Command("esclate", "to tier2", 1),)


def test_blank_runs_left_by_removed_lines_collapse() -> None:
    assert find_tags("#take\n\nHello\n\n#note x\n\nBye\n\n#status").text == "Hello\n\nBye"


def test_empty_text() -> None:
    assert find_tags("").commands == () and find_tags("").text == ""


# Tags planted in quoted history (and signatures) of each client must never be found;
# tags in the new text must be, HTML-only mail included.
CORPUS = {
    "gmail_reply.eml": [],
    "gmail_wrapped_attribution.eml": ["take"],
    "outlook_desktop_reply.eml": ["escalate"],
    "outlook_original_message.eml": ["wait"],
    "owa_reply.eml": [],
    "outlook_android_reply.eml": ["priority"],
    "outlook_mac_reply.eml": [],
    "apple_mail_reply.eml": [],
    "ios_mail_reply.eml": [],
    "thunderbird_reply.eml": [],
    "thunderbird_html_reply.eml": ["status"],
    "apple_html_only_reply.eml": ["wait"],
    "html_only_resolve.eml": ["resolve"],
    "html_alternative_empty_plain.eml": [],
    "yahoo_reply.eml": [],
    "mutt_bottom_post.eml": ["wait"],
    "gmail_forward.eml": [],
    "forwarded_as_attachment.eml": [],
    "plus_address_reply.eml": ["take", "note"],
    "german_outlook_reply.eml": [],
    "german_gmail_reply.eml": [],
    "french_iphone_reply.eml": [],
    "spanish_gmail_reply.eml": [],
    "dutch_gmail_reply.eml": [],
    "dutch_outlook_reply.eml": [],
    "italian_gmail_reply.eml": [],
    "portuguese_gmail_reply.eml": [],
    "swedish_gmail_reply.eml": [],
    "danish_iphone_reply.eml": [],
    "norwegian_outlook_reply.eml": [],
    "finnish_gmail_reply.eml": [],
    "polish_thunderbird_reply.eml": [],
    "chinese_foxmail_reply.eml": [],
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_tags(name: str) -> None:
    message = parse_message((MAILS / name).read_bytes())
    assert [c.name for c in find_tags(message.new_text).commands] == CORPUS[name]


def test_html_only_resolve_carries_its_summary() -> None:
    message = parse_message((MAILS / "html_only_resolve.eml").read_bytes())
    scan = find_tags(message.new_text)
    assert scan.commands == (Command("resolve", "replaced the docking station, both monitors "
                                                "work", 1),)
    assert scan.text == "Closing this one."


def test_planted_tags_are_really_there() -> None:
    """Without reply stripping the whole body shows more tags: the corpus test is not
    passing merely because nothing was planted."""
    for name in ("gmail_reply.eml", "apple_mail_reply.eml", "thunderbird_reply.eml",
                 "outlook_desktop_reply.eml", "owa_reply.eml", "html_only_resolve.eml",
                 "ios_mail_reply.eml", "outlook_android_reply.eml", "mutt_bottom_post.eml"):
        message = parse_message((MAILS / name).read_bytes())
        unquoted = "\n".join(line.lstrip("> ") for line in message.body_text.split("\n"))
        assert len(find_tags(unquoted).commands) > len(CORPUS[name]), name
