"""Magic Hour's numbers are checked before they reach the ledger: after a charged create, a bad value
must be recorded as something sane (and logged), never raise and strand the job."""

from __future__ import annotations

import logging

from .schema import PROJECT_ID_MAX

log = logging.getLogger(__name__)

MAX_PLAUSIBLE_CHARGE = 1_000
"""No background removal costs this much (one costs 5); anything above is a bug in the answer."""


def plausible_charge(value: object, *, interaction_id: int) -> int | None:
    """`value` when it is a plausible charge, else None: the caller records the reservation instead.

    The reservation is what the bot expected to pay; recording it keeps the budget honest without
    trusting a negative (which would free credits) or an absurd figure (which would block the server).
    """
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_PLAUSIBLE_CHARGE:
        return value
    log.warning(
        "implausible credits_charged %r from Magic Hour for interaction %s; recording the reservation instead",
        value,
        interaction_id,
    )
    return None


def storable_project_id(project_id: str, *, interaction_id: int) -> str | None:
    """The id when it fits the column; None (logged) when it does not, so the charge is still recorded.

    Trimming would store a different id that could later match or poll the wrong project.
    """
    if len(project_id) <= PROJECT_ID_MAX:
        return project_id
    log.warning(
        "Magic Hour project id of %d characters for interaction %s exceeds %d; not stored",
        len(project_id),
        interaction_id,
        PROJECT_ID_MAX,
    )
    return None
