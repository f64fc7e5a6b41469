"""Only a greeting or a sign-off: what a technician's reply leaves once its commands, quoted
history and signature are cut, and what must not be mailed to the requester on its own."""

from __future__ import annotations

import pytest

from daemon.mail.signoff import only_greeting_or_signoff

NOTHING = [
    "Regards, Jordan", "Thanks,", "Best,\nMorgan", "Sent from my iPhone", "Cheers", "Hi all",
    "", "   \n\n", "Kind regards,\nJordan Blake", "Best regards\n\nM. Lee", "Thank you!",
    "Many thanks, Robin", "Thanks & regards,\nJ. Blake", "Hello,", "Hi Ann,", "Dear Mr. Smith,",
    "Hi Ann,\n\nBest regards,\nMorgan Lee\nSent from my iPhone", "Cheers\n-- Jordan",
    "Good morning team", "Hi there!", "BR, Jean-Luc", "Yours sincerely,\nMary O'Neil",
    # German
    "Grüße", "Viele Grüße\nJordan", "Viele Grüsse, Jordan", "Mit freundlichen Grüßen\nMorgan Lee",
    "LG Robin", "Hallo zusammen,", "Danke!", "Beste Grüße,\nM.", "Von meinem iPhone gesendet",
    # French
    "Cordialement", "Bien cordialement,\nJean-Luc Picard", "Bonjour à tous,", "Merci !",
    "Bien à vous,\nClaire", "Envoyé de mon iPhone",
    # Spanish
    "Saludos", "Un saludo,\nRobin", "Hola a todos", "Muchas gracias,\nAna", "Atentamente,\nLuis",
    # Italian, Dutch, Portuguese
    "Cordiali saluti", "Met vriendelijke groet,\nJan", "Atenciosamente",
]

SOMETHING = [
    "Yes", "Jordan", "5.1.2", "Thanks, the VPN works now", "Thanks for your patience",
    "Hi Ann, please reboot.", "Best option is a reboot", "Hello, could you check the cable?",
    "Regards, Jordan\nPlease restart the client.", "Please restart the client.\nRegards, Jordan",
    "Thanks Ann, I will check", "Hi his laptop is broken", "Cheers for the logs, they show a bug",
    "Grüße an das Team, der Drucker geht wieder", "Merci pour les logs", "Saludos desde Madrid",
    "Best,\nthe patch is installed", "Hi all\n\nThe outage is over.",
]


@pytest.mark.parametrize("text", NOTHING)
def test_greetings_and_sign_offs_are_nothing_to_pass_on(text: str) -> None:
    assert only_greeting_or_signoff(text)


@pytest.mark.parametrize("text", SOMETHING)
def test_any_real_word_is_something(text: str) -> None:
    assert not only_greeting_or_signoff(text)


def test_case_and_crlf_do_not_matter() -> None:
    assert only_greeting_or_signoff("KIND REGARDS,\r\nJordan")
    assert only_greeting_or_signoff("viele grüße\r\n")


def test_a_long_text_is_always_something() -> None:
    # Twenty sign-offs in a row are a (strange) text, not a signature.
    assert not only_greeting_or_signoff("\n".join(["Thanks"] * 20))
