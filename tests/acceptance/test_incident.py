"""Incidents by mail end to end (issue 19): three people report one outage, the helpdesk links
two reports to the first with #link, then resolves the first. Real mail: Dovecot in, aiosmtpd
out, `run.py run` as its own process; Sam authenticated by his signed Reply-To."""

from __future__ import annotations

from datetime import datetime, timedelta

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
)
FIX = "Restarted the intranet's application pool; the 502s are gone."


def send(site: Site, scene: Scene) -> None:
    site.append(compose(scene, delivered(site.smtp.received), datetime.now(ZONE)))


def notices_to(site: Site, address: str) -> list[Received]:
    return [r for r in site.smtp.received if address in r.rcpt_tos
            and "is solved" in _text(r)]


def _text(r: Received) -> str:
    body = r.message.get_body(("plain",))
    return body.get_content() if body is not None else ""  # type: ignore[union-attr]


def test_three_reports_linked_and_resolved_as_one_incident(site: Site) -> None:
    daemon = site.start(TIERDESK_AUTH_SECRET=SECRET)
    for n, (who, subject) in enumerate(REPORTS, start=1):
        send(site, Scene(timedelta(0), f"report {n}", who, "It fails for me too.",
                         subject=subject))
        # In order, so the refs are TD-1..TD-3 as the subjects say.
        wait(lambda n=n, s=subject: got(site, HELPDESK, f"[TD-{n}] New ticket, P3: {s}"),
             f"the helpdesk's notice of TD-{n}")
    for n in (2, 3):
        subject = REPORTS[n - 1][1]
        send(site, Scene(timedelta(0), f"link TD-{n}", SAM, "#link TD-1\n\n-- \nSam",
                         answers=f"New ticket, P3: {subject}"))
        wait(lambda n=n: got(site, HELPDESK, f"[TD-{n}] Done: #link"), f"TD-{n} linked")
    send(site, Scene(timedelta(0), "resolve the incident", SAM, f"#resolve {FIX}\n\n-- \nSam",
                     answers=f"New ticket, P3: {REPORTS[0][1]}"))
    addresses = [who.split("<")[1].rstrip(">") for who, _ in REPORTS]
    wait(lambda: all(notices_to(site, a) for a in addresses), "three resolution notices")
    wait(lambda: outbox_drained(site), "every queued mail sent")
    assert daemon.stop() == 0
    for n, (address, (_, subject)) in enumerate(zip(addresses, REPORTS, strict=True), 1):
        [notice] = notices_to(site, address)  # one each, on their own ticket
        assert str(notice.message["Subject"]) == f"[TD-{n}] {subject}"
        assert f"support+TD-{n}@example.com" in str(notice.message["Reply-To"])
        assert FIX in _text(notice)
    shot = snapshot(site)
    assert [(ref, state) for ref, state, _ in shot.tickets] == [
        ("TD-1", "resolved"), ("TD-2", "resolved"), ("TD-3", "resolved")]
    assert not {"security", "refused"} & {e[0] for e in shot.events}
    daemon.no_traceback()
