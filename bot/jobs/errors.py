"""Why a request or an image ended without a result, when it is the runner's own reason (not Magic Hour's)."""

from __future__ import annotations

from bot.balance import BalanceTooLow
from bot.ledger import LimitExceeded
from bot.magic_hour import MagicHourError


class MemberBusy(Exception):
    def __init__(self, active: int, limit: int) -> None:
        super().__init__(f"member already has {active} request(s) running (limit {limit})")
        self.active = active
        self.limit = limit


class ShuttingDown(Exception):
    """The bot is restarting and takes no new jobs."""


class JobCancelled(Exception):
    """The member cancelled while waiting for a free slot; nothing was charged."""


class StillRunning(Exception):
    """Magic Hour has not finished by the deadline; the job is tracked on and delivered when it ends."""

    def __init__(self, project_id: str) -> None:
        super().__init__(f"project {project_id} is still running")
        self.project_id = project_id


class Unexpected(Exception):
    """Something the runner did not foresee ended one image (a bug, a ledger that gave up retrying).

    `charged` says what the member must be told: whether Magic Hour may have charged for it.
    """

    def __init__(self, cause: BaseException, *, charged: bool) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause
        self.charged = charged


EXPECTED = (BalanceTooLow, MagicHourError, LimitExceeded, MemberBusy, ShuttingDown, JobCancelled, StillRunning)
"""What a request may end with in the normal course of things; anything else is `Unexpected`."""
