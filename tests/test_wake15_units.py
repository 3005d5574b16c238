"""wake15: the pure pieces: when a budget's period turns."""

from __future__ import annotations

import datetime as dt
import os
import time

from dropscribe.jobs.spending import turn


def test_turn_is_the_next_local_midnight_or_first_of_the_month():
    """The end of a day's budget is the next local midnight; a month's, the 1st at 0:00."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC0"
    time.tzset()
    try:
        now = dt.datetime(2026, 12, 31, 23, 59, 30, tzinfo=dt.UTC).timestamp()
        assert turn("per_day 5.00 (spent 5, this file 1)", now) == now + 30
        assert turn("per_month 50.00", now) == now + 30
        mid = dt.datetime(2026, 2, 10, 12, tzinfo=dt.UTC).timestamp()
        assert turn("per_month 50.00", mid) == dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp()
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()
