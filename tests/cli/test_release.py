"""`tierdesk release ADDRESS` and the held addresses in `tierdesk status`, against real
databases (SQLite and PostgreSQL) and the embedded IMAP server, on a fixed clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest

from daemon.cli.main import main
from daemon.inbound.ingest import process_mail
from daemon.store.database import Database
from tests.cli.test_status import HOST, ROOT, Site, _site, codes, status, status_json
from tests.inbound.imap.servers import EmbeddedServer
from tests.inbound.ingest.mails import mail

T0 = datetime.fromisoformat("2026-03-02T09:00:00+00:00")
LOOPER = "noreply@tickets.vendor.example"
RELEASE = f"tierdesk release {LOOPER}"


@pytest.fixture
def site(database: Database, embedded_imap: EmbeddedServer,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    yield _site(database, embedded_imap, monkeypatch)


def at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def loop(site: Site, count: int, start: int = 0, when: datetime = T0) -> None:
    """`count` new conversations from the autoresponder, one mail at a time."""
    inbox = site.parts().inbox
    for n in range(start, start + count):
        with site.database.transaction() as session:
            process_mail(session, mail(subject=f"Request #{n} received", sender=LOOPER,
                                       body=f"We opened request #{n}."), inbox, when)


def release(capsys: pytest.CaptureFixture[str], address: str,
            moment: datetime) -> tuple[int, str, str]:
    code = main(["release", address, "--config", str(ROOT)], clock=at(moment))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_lists_a_held_address_until_it_is_released(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    loop(site, 7)
    later = T0 + timedelta(minutes=10)
    site.beat_all(f"{HOST}:1", later)
    code, out, _ = status(capsys, clock=at(later))
    assert code == 1
    assert (f"  - {LOOPER} opened 5 tickets within the hour (mail.max_new_tickets_per_hour "
            "is 5); 2 more new conversations from it recorded on TD-5 with no ticket and no "
            f"mail: a mail loop stops by itself; if it is a person, `{RELEASE}` lets the next "
            "mail open a ticket") in out
    _, report = status_json(capsys, "--health", clock=at(later))
    assert codes(report) == ["sender_held"]
    assert report["held_senders"] == [{"address": LOOPER, "tickets": 5, "held": 2,
                                       "ticket": "TD-5", "limit": 5, "release": RELEASE}]

    code, out, err = release(capsys, LOOPER, later)
    assert (code, err) == (0, "")
    assert out == (f"released {LOOPER}: its 5 tickets of the past hour no longer count (2 new "
                   "conversations had been recorded without a ticket); its next new mail "
                   "opens a ticket\n")
    _, report = status_json(capsys, clock=at(later))
    assert report["held_senders"] == [] and "sender_held" not in codes(report)
    loop(site, 1, start=7, when=later + timedelta(seconds=1))
    _, report = status_json(capsys, clock=at(later))
    assert report["tickets"]["open"] == 6


def test_status_stops_listing_it_after_the_hour(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    loop(site, 6)
    _, report = status_json(capsys, clock=at(T0 + timedelta(minutes=59)))
    assert "sender_held" in codes(report)
    _, report = status_json(capsys, clock=at(T0 + timedelta(hours=1)))
    assert "sender_held" not in codes(report) and report["held_senders"] == []


def test_an_address_at_the_limit_but_never_held_is_not_listed(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    loop(site, 5)
    _, report = status_json(capsys, clock=at(T0 + timedelta(minutes=1)))
    assert report["held_senders"] == []


def test_release_of_an_address_not_held_is_one_line_and_changes_nothing(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    loop(site, 2)
    code, out, err = release(capsys, LOOPER.upper(), T0 + timedelta(minutes=1))
    assert (code, out) == (1, "")
    assert err == (f"tierdesk: {LOOPER.upper()} is not held: 2 new tickets in the past hour "
                   "counted (mail.max_new_tickets_per_hour is 5)\n")
    code, _, err = release(capsys, "not-an-address", T0)
    assert code == 1 and "is not a mail address" in err


def test_release_matches_the_address_in_any_case(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    loop(site, 6)
    code, out, _ = release(capsys, LOOPER.upper(), T0 + timedelta(minutes=1))
    assert code == 0 and "its 5 tickets of the past hour no longer count" in out
    _, report = status_json(capsys, clock=at(T0 + timedelta(minutes=2)))
    assert report["held_senders"] == []
