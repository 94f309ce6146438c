"""The name a job carries at Magic Hour, written and read in one place.

Every job's name ends with " #<interaction id>" (and "/<n>" for a request's later images). Magic Hour's
webhook events carry the project's name, so an event for a job whose create answer was lost (or has not
arrived yet) still names the job it belongs to.
"""

from __future__ import annotations

import re

MAX_NAME = 100  # what the bot lets a member give, suffix included
_SUFFIX = re.compile(r"#(\d{15,22})(?:/(\d{1,2}))?$")


def job_name(label: str, interaction_id: int, position: int = 0) -> str:
    """`label` cut to fit, then the suffix that names the job."""
    suffix = f" #{interaction_id}" + (f"/{position}" if position else "")
    return label[: MAX_NAME - len(suffix)] + suffix


def job_key_in(name: str | None) -> tuple[int, int] | None:
    """(interaction id, image position) named by a job's suffix, or None for a name the bot did not write."""
    match = _SUFFIX.search(name or "")
    return (int(match.group(1)), int(match.group(2) or 0)) if match else None
