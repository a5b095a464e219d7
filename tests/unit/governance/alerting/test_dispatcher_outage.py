"""The alert dispatcher while its database is away: it backs off and logs one traceback, not one a second."""

from __future__ import annotations

import asyncio
import logging

import pytest

from governance.alerting.delivery.destinations import Destinations
from governance.alerting.delivery.dispatcher import Dispatcher, DispatcherConfig
from store.db import make_engine


async def test_rounds_back_off_while_the_database_is_down_and_log_one_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine("postgresql://warden@127.0.0.1:1/none")  # nothing listens: every round fails at once
    dispatcher = Dispatcher(engine, Destinations(), DispatcherConfig(error_backoff_max_s=30.0))
    caplog.set_level(logging.WARNING, logger="warden.delivery")
    task = asyncio.create_task(dispatcher.run())
    await asyncio.sleep(5.5)  # back-off 1, 2, 4 s: rounds at about 0, 1, 3 s (and not 5 or 6)
    dispatcher.stop()
    await asyncio.wait_for(task, 10)
    engine.dispose()
    rounds = [r for r in caplog.records if r.getMessage().startswith("alert dispatcher round failed")]
    assert 2 <= len(rounds) <= 3, [r.getMessage() for r in rounds]
    assert sum(1 for r in rounds if r.exc_info) == 1, "one traceback, then one line per failed round"
    assert all(r.__dict__.get("retry_in_s") for r in rounds)
