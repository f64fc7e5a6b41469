"""pytest plugin: keep every raw mail the tests hand to parse_message, for bench/parse_check.py.

    PARSE_RECORD_DIR=/tmp/mails python -m pytest -q -p record_mails [tests...]   # bench/ on path

`daemon.mail.message.parse_message` calls the module's `_parse`; wrapping that catches the mails
every in-process caller parses (ingest, outbox, explain, the corpus tests ...). Each distinct
mail is written once, named by its SHA-256.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    import daemon.mail.message as message

    folder = Path(os.environ.get("PARSE_RECORD_DIR", "parse_record"))
    folder.mkdir(parents=True, exist_ok=True)
    original = message._parse

    def recording(raw, *args, **kwargs):  # type: ignore[no-untyped-def]
        path = folder / (hashlib.sha256(raw).hexdigest() + ".eml")
        if not path.exists():
            path.write_bytes(raw)
        return original(raw, *args, **kwargs)

    message._parse = recording
