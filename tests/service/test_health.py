"""The pure rules behind `status`: staleness from the settings, loop and daemon states, and
which problems count for --health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.config.settings import Settings
from daemon.service import health
from daemon.service.health import Beat, Facts, MailboxFacts, Overdue

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LIMITS = health.limits(Settings())
BOX = MailboxFacts("INBOX on localhost:993", waiting=0)


def beat(daemon: str = "h:1", loop: str = "ingest", ago: float = 1,
         started_at: datetime | None = None, stopped_at: datetime | None = None) -> Beat:
    """A loop that last beat, successfully, `ago` seconds before NOW."""
    at = NOW - timedelta(seconds=ago)
    return Beat(daemon, loop, started_at or at - timedelta(hours=1), at, ok_at=at,
                stopped_at=stopped_at)


def running(daemon: str = "h:1", ago: float = 1) -> list[Beat]:
    return [beat(daemon, loop, ago) for loop in health.LOOPS]


def codes(facts: Facts) -> list[str]:
    return [item.code for item in health.attention(facts, LIMITS)]


@pytest.mark.parametrize(("imap", "smtp", "stale"), [
    ({}, {}, "3m30s"),                                    # 3 x 60 s poll + 30 s timeout
    ({"poll_interval": "10s"}, {}, "2m30s"),              # never below 3 x 40 s
    ({"poll_interval": "10m"}, {"timeout": "2m"}, "32m"),
])
def test_stale_after_follows_poll_interval_and_timeouts(imap: dict[str, str],
                                                        smtp: dict[str, str], stale: str) -> None:
    settings = Settings.model_validate({"imap": imap, "smtp": smtp})
    assert health.span(health.limits(settings).stale_after) == stale


@pytest.mark.parametrize(("ago", "stopped", "state"), [
    (1, None, "alive"), (210, None, "alive"), (211, None, "stale"),
    (5000, NOW - timedelta(hours=1), "stopped"),
])
def test_loop_state(ago: float, stopped: datetime | None, state: str) -> None:
    assert health.loop_state(beat(ago=ago, stopped_at=stopped), NOW, LIMITS.stale_after) == state


def test_all_well() -> None:
    assert codes(Facts(NOW, running(), BOX)) == []


def test_a_running_daemon_without_one_loop_says_so_once_it_had_time() -> None:
    young = [beat(loop="ingest", started_at=NOW - timedelta(seconds=30))]
    assert codes(Facts(NOW, young, BOX)) == []
    old = [beat(loop="ingest"), beat(loop="clock")]
    assert codes(Facts(NOW, old, BOX)) == ["loop_missing"]


def test_daemons_forgotten_after_a_week_still_date_the_last_beat() -> None:
    facts = Facts(NOW, running(ago=8 * 86400), BOX)
    assert health.daemons(facts.beats, NOW, LIMITS.stale_after) == []
    (item,) = health.attention(facts, LIMITS)
    assert item.message == "no daemon is running (last beat 8d ago)"


def test_service_problems_come_first_and_decide_the_health_exit_code() -> None:
    facts = Facts(NOW, running(), MailboxFacts("INBOX", error="imap: refused"), parked=2,
                  quarantined=1, overdue=[Overdue("TD-4", "tier1", "t1", NOW - timedelta(hours=2))])
    items = health.attention(facts, LIMITS)
    assert [i.code for i in items] == ["imap_unreachable", "outbox_parked", "quarantine",
                                       "tickets_overdue"]
    assert (health.exit_code(items, False), health.exit_code(items, True)) == (1, 1)
    housekeeping = items[1:]
    assert (health.exit_code(housekeeping, False), health.exit_code(housekeeping, True)) == (1, 0)
    assert health.exit_code([], False) == 0
    assert str(items[3]) == "1 ticket past the deadline (TD-4 by 2h): see run.py tickets"


@pytest.mark.parametrize(("oldest", "waiting", "code"), [
    (timedelta(minutes=3), 4, []), (timedelta(minutes=4), 4, ["mail_waiting"]),
    (None, 4, []), (timedelta(hours=3), 0, []),
])
def test_mail_waiting_too_long(oldest: timedelta | None, waiting: int, code: list[str]) -> None:
    box = MailboxFacts("INBOX", waiting, NOW - oldest if oldest else None)
    assert codes(Facts(NOW, running(), box)) == code


@pytest.mark.parametrize(("age", "code"), [(14, []), (16, ["outbox_pending"])])
def test_outbox_pending_too_long(age: int, code: list[str]) -> None:
    facts = Facts(NOW, running(), BOX, pending=3, oldest_pending_at=NOW - timedelta(minutes=age))
    assert codes(facts) == code


def test_a_held_sender_is_work_for_an_admin_with_the_release_command() -> None:
    held = health.HeldSender("noreply@vendor.example", tickets=5, held=1, ticket="TD-9",
                             limit=5)
    (item,) = health.attention(Facts(NOW, running(), BOX, held_senders=[held]), LIMITS)
    assert (item.code, item.service) == ("sender_held", False)
    assert str(item) == (
        "noreply@vendor.example opened 5 tickets within the hour (mail.max_new_tickets_per_hour"
        " is 5); 1 more new conversation from it recorded on TD-9 with no ticket and no mail: "
        "a mail loop stops by itself; if it is a person, `tierdesk release "
        "noreply@vendor.example` lets the next mail open a ticket")
    assert health.exit_code([item], health_only=True) == 0
