"""Moves this Python process's clock, to prove that no test depends on today's date.

With this folder on PYTHONPATH and TIMESHIFT_TO set to a date or time (ISO 8601, UTC when no
offset is given), the first Python process (pytest) sees its wall clock start at that moment
and tick on from there, and every Python process it starts (each `run.py` of the tests, which
inherit the environment) runs at the same shifted time: the shift is handed down as
TIMESHIFT_OFFSET, so the processes agree with each other as on one host. Only Python's clock
moves: Dovecot, PostgreSQL and OpenSSL keep the real time, as on a host whose clock is skewed
against its servers. time.monotonic() is not touched, so timeouts and asyncio run as usual.
`.ci/run` runs the suite this way. (Not TIERDESK_*: several tests drop those from the
environment of the daemons they start.)
"""

import os

if os.environ.get("TIMESHIFT_TO"):
    import time
    from datetime import UTC, datetime

    import time_machine

    if "TIMESHIFT_OFFSET" not in os.environ:
        target = datetime.fromisoformat(os.environ["TIMESHIFT_TO"])
        if target.tzinfo is None:
            target = target.replace(tzinfo=UTC)
        os.environ["TIMESHIFT_OFFSET"] = repr(target.timestamp() - time.time())
    _now = time.time() + float(os.environ["TIMESHIFT_OFFSET"])
    # tick=True: time passes as usual from the moment, so waits and timeouts still end.
    time_machine.travel(datetime.fromtimestamp(_now, UTC), tick=True).start()
