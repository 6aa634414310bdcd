"""The gateway's scan pool with its real worker processes (the pipeline built in each)."""

from __future__ import annotations

import asyncio
import os
import signal

from mailsift.config.schema import Settings
from mailsift.core.envelope import Envelope
from mailsift.services.scan_workers import WorkerPool
from mailsift.services.scanning import ScanPool
from mailsift.testing.messages import make_message


def test_ctrl_c_in_the_terminal_is_the_gateways_to_handle_not_the_workers() -> None:
    # A terminal's Ctrl-C reaches the whole process group; the gateway stops its workers
    # itself, so a worker that got SIGINT keeps serving instead of dying with a traceback.
    pool = ScanPool(Settings.model_validate({"scan": {"offline": True}}), 1)

    async def main() -> None:
        try:
            await pool.warm_up()
            executor = pool._executor
            assert isinstance(executor, WorkerPool)
            (pid,) = executor.pids()
            os.kill(pid, signal.SIGINT)
            await asyncio.sleep(0.2)
            result = await pool.scan(make_message(), Envelope(), "after-sigint")
            assert result.verdict.action.value == "deliver"
            assert executor.pids() == [pid]
        finally:
            await pool.aclose()

    asyncio.run(main())
