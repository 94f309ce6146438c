"""Discord markdown for text a member chose: shown as it is, never able to change the message around it."""

from __future__ import annotations


def code(text: str, limit: int = 100) -> str:
    """`text` as inline code whatever it holds: a member's file name with a backtick or a line break in it
    must not break out of the span (and take the rest of the message's markdown with it)."""
    flat = " ".join(text.replace("`", "ˋ").split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return f"`{flat or '?'}`"
