"""SMTP outcomes sorted into the three kinds the sender acts on; the retry schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPDataError,
    SMTPNotSupported,
    SMTPReadTimeoutError,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
)

from daemon.outbound.sender import SenderSettings, backoff
from daemon.outbound.smtp import ConnectionTrouble, PermanentFailure, TemporaryFailure, classify


@pytest.mark.parametrize(("error", "kind"), [
    (SMTPDataError(451, "4.3.0 try later"), TemporaryFailure),
    (SMTPSenderRefused(452, "4.3.1 full", "a@b.example"), TemporaryFailure),
    (SMTPDataError(554, "5.7.1 rejected"), PermanentFailure),
    (SMTPResponseException(421, "4.4.2 closing"), ConnectionTrouble),
    (SMTPAuthenticationError(535, "5.7.8 bad credentials"), ConnectionTrouble),
    (SMTPRecipientsRefused([SMTPRecipientRefused(550, "5.1.1 unknown", "a@b.example")]),
     PermanentFailure),
    (SMTPRecipientsRefused([SMTPRecipientRefused(450, "4.2.1 busy", "a@b.example")]),
     TemporaryFailure),
    (SMTPServerDisconnected("lost"), ConnectionTrouble),
    (SMTPConnectError("refused"), ConnectionTrouble),
    (SMTPReadTimeoutError("slow"), ConnectionTrouble),
    (ConnectionRefusedError(111, "Connection refused"), ConnectionTrouble),
    (SMTPNotSupported("SMTPUTF8 is not supported"), PermanentFailure),
    (ValueError("address contains newline"), PermanentFailure),
])
def test_classify(error: BaseException, kind: type[Exception]) -> None:
    result = classify(error)
    assert type(result) is kind
    assert "\n" not in str(result) and str(result)


def test_classify_keeps_the_code_and_the_text() -> None:
    assert str(classify(SMTPDataError(550, "5.1.1 no\r\n such user"))) == "550 5.1.1 no such user"


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    settings = SenderSettings()
    assert backoff(1, settings, lambda: 0.0) == timedelta(seconds=30)
    assert backoff(1, settings, lambda: 1.0) == timedelta(minutes=1)
    assert backoff(3, settings, lambda: 1.0) == timedelta(minutes=4)
    assert backoff(30, settings, lambda: 1.0) == timedelta(hours=1)
