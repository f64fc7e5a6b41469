"""Moves this Python process's clock, to prove that no test depends on today's date.

With this folder on PYTHONPATH and TIERDESK_TEST_CLOCK set to a date or time (ISO 8601,
UTC when no offset is given), every Python process started (pytest and every `run.py` the
tests start, which inherit the environment) sees its wall clock start at that moment and
tick on from there. Only Python's clock moves: Dovecot, PostgreSQL and OpenSSL keep the
real time, as on a host whose clock is skewed against its servers. time.monotonic() is not
touched, so timeouts and asyncio run as usual. `.ci/run` runs the suite this way.
"""

import os

_AT = os.environ.get("TIERDESK_TEST_CLOCK")
if _AT:
    from datetime import UTC, datetime

    import time_machine

    _moment = datetime.fromisoformat(_AT)
    if _moment.tzinfo is None:
        _moment = _moment.replace(tzinfo=UTC)
    # tick=True: time passes as usual from the moment, so waits and timeouts still end.
    time_machine.travel(_moment, tick=True).start()
