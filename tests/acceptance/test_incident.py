"""Incidents and knowledge by mail end to end (issue 19): five people report one outage, the
helpdesk links four reports to the first with #link, then resolves the first: five people get
one resolution notice each. A week later a new report of the same fault gets the old fix in
its notice and in tier 1's handoff. Real mail: Dovecot in, aiosmtpd out, `run.py run` as its
own process (the second one a week ahead, by tests/timeshift); Sam authenticated by his
signed Reply-To."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from daemon.demo.story import SAM, ZONE, Scene, compose
from tests.acceptance.story import (
    SECRET,
    delivered,
    got,
    outbox_drained,
    snapshot,
    wait,
)
from tests.outbound.smtp_server import Received
from tests.service.conftest import Site

HELPDESK = "sam.rivera@example.com"
REPORTS = (  # (requester, subject): no triage rule matches, so each waits for the helpdesk
    ("Ann Lee <ann.lee@example.org>", "Intranet does not load"),
    ("Bo Kim <bo.kim@example.org>", "Error 502 on the intranet"),
    ("Cy Ruiz <cy.ruiz@example.org>", "Intranet page blank since 10:00"),
    ("Di Park <di.park@example.org>", "Cannot open the intranet"),
    ("Ed Moss <ed.moss@example.org>", "intranet 502 bad gateway"),
)
TIER1 = "alex.chen@example.com"
WEEK = timedelta(days=7)
TIMESHIFT = Path(__file__).resolve().parents[1] / "timeshift"
FIX = "Restarted the intranet's application pool; the 502s are gone."


def send(site: Site, scene: Scene, ahead: timedelta = timedelta(0)) -> None:
    site.append(compose(scene, delivered(site.smtp.received), datetime.now(ZONE) + ahead))


def a_week_ahead() -> dict[str, str]:
    """The environment of a daemon whose clock runs a week ahead of this process's (which
    .ci/run may itself have shifted): tests/timeshift's sitecustomize, one offset more."""
    offset = float(os.environ.get("TIMESHIFT_OFFSET", "0")) + WEEK.total_seconds()
    path = os.pathsep.join(filter(None, [str(TIMESHIFT), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "TIMESHIFT_TO": "a week ahead", "TIMESHIFT_OFFSET": repr(offset)}


def mail_to(site: Site, address: str, subject: str) -> str:
    [found] = [r for r in site.smtp.received if address in r.rcpt_tos
               and str(r.message["Subject"]).startswith(subject)]
    return " ".join(_text(found).split())


def notices_to(site: Site, address: str) -> list[Received]:
    # "believe your request": the resolution notice, on the incident or on its own; the
    # linked notice also promises news "when it is solved".
    return [r for r in site.smtp.received if address in r.rcpt_tos
            and "believe your request" in _text(r)]


def _text(r: Received) -> str:
    body = r.message.get_body(("plain",))
    return body.get_content() if body is not None else ""  # type: ignore[union-attr]


def test_five_reports_linked_resolved_as_one_and_the_fix_found_a_week_later(
        site: Site) -> None:
    daemon = site.start(TIERDESK_AUTH_SECRET=SECRET)
    for n, (who, subject) in enumerate(REPORTS, start=1):
        send(site, Scene(timedelta(0), f"report {n}", who, "It fails for me too.",
                         subject=subject))
        # In order, so the refs are TD-1..TD-3 as the subjects say.
        wait(lambda n=n, s=subject: got(site, HELPDESK, f"[TD-{n}] New ticket, P3: {s}"),
             f"the helpdesk's notice of TD-{n}")
    for n in range(2, len(REPORTS) + 1):
        subject = REPORTS[n - 1][1]
        send(site, Scene(timedelta(0), f"link TD-{n}", SAM, "#link TD-1\n\n-- \nSam",
                         answers=f"New ticket, P3: {subject}"))
        wait(lambda n=n: got(site, HELPDESK, f"[TD-{n}] Done: #link"), f"TD-{n} linked")
    send(site, Scene(timedelta(0), "resolve the incident", SAM, f"#resolve {FIX}\n\n-- \nSam",
                     answers=f"New ticket, P3: {REPORTS[0][1]}"))
    addresses = [who.split("<")[1].rstrip(">") for who, _ in REPORTS]
    wait(lambda: all(notices_to(site, a) for a in addresses), "five resolution notices")
    wait(lambda: outbox_drained(site), "every queued mail sent")
    assert daemon.stop() == 0
    for n, (address, (_, subject)) in enumerate(zip(addresses, REPORTS, strict=True), 1):
        [notice] = notices_to(site, address)  # one each, on their own ticket
        assert str(notice.message["Subject"]) == f"[TD-{n}] {subject}"
        assert f"support+TD-{n}@example.com" in str(notice.message["Reply-To"])
        assert FIX in _text(notice)
        if n > 1:  # a report: told once that it joined the incident, then of its end
            linked = [r for r in site.smtp.received if address in r.rcpt_tos
                      and "is part of a wider problem, TD-1" in _text(r)]
            assert len(linked) == 1 and "the wider problem TD-1" in _text(notice)
    shot = snapshot(site)
    assert [(ref, state) for ref, state, _ in shot.tickets] == [
        (f"TD-{n}", "resolved") for n in range(1, len(REPORTS) + 1)]
    assert not {"security", "refused"} & {e[0] for e in shot.events}
    daemon.no_traceback()

    # A week later (the incident's tickets closed meanwhile) the fault is back.
    later = site.start(TIERDESK_AUTH_SECRET=SECRET, **a_week_ahead())
    subject = "Intranet shows 502 again"
    send(site, Scene(timedelta(0), "a week later", "Fay Ng <fay.ng@example.org>",
                     "The intranet gives me a 502 bad gateway error.", subject=subject),
         ahead=WEEK)
    wait(lambda: got(site, HELPDESK, f"[TD-6] New ticket, P3: {subject}"), "TD-6's notice")
    notice = mail_to(site, HELPDESK, f"[TD-6] New ticket, P3: {subject}")
    assert "fixed by Sam Rivera: " + FIX in notice, notice
    assert "look alike" not in notice  # a week-old incident is no look-alike: its fix is
    send(site, Scene(timedelta(0), "route TD-6", SAM, "#route tier1 the intranet again",
                     answers=f"New ticket, P3: {subject}"), ahead=WEEK)
    wait(lambda: got(site, TIER1, f"[TD-6] P3 handed to Tier 1 Support: {subject}"),
         "tier 1's handoff of TD-6")
    handoff = mail_to(site, TIER1, f"[TD-6] P3 handed to Tier 1 Support: {subject}")
    assert "fixed by Sam Rivera: " + FIX in handoff, handoff
    # The incident's fix is listed once, under the incident, not once per linked report.
    assert handoff.count(FIX) == 1 and "TD-1" in handoff, handoff
    wait(lambda: outbox_drained(site), "every queued mail sent")
    assert later.stop() == 0
    assert {ref: state for ref, state, _ in snapshot(site).tickets}["TD-1"] == "closed"
    later.no_traceback()
