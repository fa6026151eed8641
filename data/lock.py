"""The pipeline lock: one writer at a time across the scheduler and the CLI.

An OS file lock (``flock`` through the filelock library) on ``HOME/pipeline.lock``. The kernel
releases it when the holding process exits for any reason, SIGKILL included, so a crashed run can
never leave it stuck. Who holds it (pid, command, since when) is written next to it, for the
message a second run gets.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

__all__ = ["PipelineBusy", "PipelineLock"]


class PipelineBusy(RuntimeError):
    """Another pipeline run holds the lock; the message says which process and since when."""


class PipelineLock:
    """Hold ``HOME/pipeline.lock`` for the duration of a ``with`` block.

    Args:
        home: the home folder.
        wait_s: how long to wait for a running pipeline to finish (0: fail at once).

    Raises:
        PipelineBusy: on entry, when another process still holds the lock after ``wait_s``.
    """

    def __init__(self, home: Path, *, wait_s: float = 0) -> None:
        self.path = home / "pipeline.lock"
        self.holder_path = home / "pipeline.lock.holder"
        self.wait_s = wait_s
        self._lock = FileLock(self.path, timeout=wait_s)

    def __enter__(self) -> PipelineLock:
        try:
            self._lock.acquire()
        except Timeout:
            raise PipelineBusy(
                f"Another pipeline run holds {self.path} ({self._holder()}); runs never overlap. "
                "Wait for it to finish, or check `tieout status`."
            ) from None
        holder = {"pid": os.getpid(), "since": datetime.now(UTC).isoformat(), "command": " ".join(sys.argv)}
        self.holder_path.write_text(json.dumps(holder))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.holder_path.unlink(missing_ok=True)
        self._lock.release()

    def _holder(self) -> str:
        try:
            h = json.loads(self.holder_path.read_text())
        except (OSError, ValueError):
            return "holder unknown"
        return f"pid {h.get('pid')}, since {h.get('since')}, `{h.get('command')}`"
