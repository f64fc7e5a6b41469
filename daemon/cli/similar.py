"""`tierdesk similar REF`: the tickets like one ticket, as its notice and handoffs list them:
the look-alikes opened within duplicates.window before it, and the resolved ones with their
`#resolve` summary and who fixed them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from daemon.auth.directory import Directory
from daemon.cli.store import reading, stored_ticket, table
from daemon.config.settings import Settings
from daemon.outbound.lookalikes import Similar, find_similar, fix_context, span


def similar_command(settings: Settings, directory: Directory | None, ref_text: str, *,
                    as_json: bool, limit: int | None, now: datetime) -> int:
    """`directory` gives the fixers' names (None when the site does not load: addresses)."""
    duplicates = settings.duplicates
    if limit is not None:  # --limit replaces both counts, even where the site says 0
        duplicates = duplicates.model_copy(update={"max": limit, "past_fixes": limit})
    zone = settings.calendars["default"].timezone
    with reading(settings) as session:
        ticket = stored_ticket(session, ref_text)
        found = find_similar(session, ticket, duplicates)
        ref, subject = ticket.ref, ticket.subject
    fixes = [fix_context(fix, directory, zone, now) for fix in found.past_fixes]
    if as_json:
        print(json.dumps(_json(ref, subject, found, fixes), indent=2))
        return 0
    print(f"{ref}: {subject}")
    print()
    print(_lookalikes_text(found, settings, now))
    print()
    if fixes:
        print(f"Fixed before ({len(fixes)}):")
        print("\n".join(f"  {fix['line']}" for fix in fixes))
    else:
        print("Fixed before: no resolved ticket looks like it")
    return 0


def _lookalikes_text(found: Similar, settings: Settings, now: datetime) -> str:
    window = span(settings.duplicates.window)
    if not found.lookalikes:
        return f"Look-alikes (opened within {window} before it): none"
    rows = [("REF", "OPENED", "STATE", "SCORE", "SUBJECT")]
    rows += [(item.ref, f"{span(now - item.opened_at)} ago", item.state, f"{item.score:.2f}",
              item.subject) for item in sorted(found.lookalikes, key=lambda i: i.opened_at)]
    return (f"Look-alikes (opened within {window} before it), reply `#link REF` to link:\n"
            + "\n".join(f"  {line}" for line in table(rows).splitlines()))


def _json(ref: str, subject: str, found: Similar,
          fixes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "ref": ref, "subject": subject,
        "lookalikes": [item.as_json() for item in found.lookalikes],
        "past_fixes": [{**item.as_json(), "fixed_by": fix["fixed_by"], "date": fix["date"],
                        "line": fix["line"]}
                       for item, fix in zip(found.past_fixes, fixes, strict=True)],
    }
