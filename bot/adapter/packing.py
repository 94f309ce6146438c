"""Which results go in which message: Discord takes at most 10 files and one upload limit per message.

Pure arithmetic on sizes, kept apart from sending so it can be checked on its own: files keep the member's
order, each message is filled as far as it goes, and a file no message could carry becomes a link.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_FILES_PER_MESSAGE = 10


@dataclass
class Pack:
    messages: list[list[int]] = field(default_factory=list)  # positions per message, the first is the reply
    links: list[int] = field(default_factory=list)  # positions too large for any message: sent as links


def pack_files(
    files: list[tuple[int, int]], *, first_limit: int, later_limit: int, max_messages: int | None = None
) -> Pack:
    """`files` is (position, size) in order; the first message may carry `first_limit` bytes, later ones
    `later_limit` (a followup has the reply's limit, a channel post the default one). With `max_messages`
    (Discord caps the follow-ups of an app that is only user-installed), what needs more messages is linked."""
    pack = _pack(files, first_limit=first_limit, later_limit=later_limit)
    if max_messages is not None and len(pack.messages) > max_messages:
        overflow = [position for message in pack.messages[max_messages:] for position in message]
        pack = Pack(messages=pack.messages[:max_messages], links=sorted(pack.links + overflow))
    return pack


def _pack(files: list[tuple[int, int]], *, first_limit: int, later_limit: int) -> Pack:
    pack = Pack()
    current: list[int] = []
    used = 0
    for position, size in files:
        limit = first_limit if not pack.messages else later_limit
        if size > limit and size > later_limit:  # fits no message still to come: a link, and keep filling
            pack.links.append(position)
            continue
        if current and (len(current) >= MAX_FILES_PER_MESSAGE or used + size > limit):
            pack.messages.append(current)
            current, used = [], 0
            limit = later_limit
        if size > limit:
            pack.links.append(position)
            continue
        current.append(position)
        used += size
    if current:
        pack.messages.append(current)
    return pack
