"""The sentences of role limits and the usage chart: what they name, and that they stay within a Discord message."""

from __future__ import annotations

from datetime import UTC, datetime

from bot import replies
from bot.i18n import ENGLISH
from bot.ledger import LimitExceeded, Period, RoleLimit

RESETS = datetime(2025, 3, 16, tzinfo=UTC)
ROLE = 1_234_567_890_123_456_789


def test_a_role_cap_refusal_names_the_role_the_cap_and_the_reset() -> None:
    error = LimitExceeded("member", 10, 10, Period.DAY, RESETS, 5, role_id=ROLE)
    assert replies.limit_exceeded(ENGLISH, error) == (
        f"🚫 You can't start another background removal: you have used 10 credits of your role <@&{ROLE}>'s cap of "
        f"10 credits today, and each one costs 5. The limit resets <t:{int(RESETS.timestamp())}:R>."
    )
    never = LimitExceeded("member", 5, 10, Period.NONE, None, 10, images=2, role_id=ROLE)
    assert replies.limit_exceeded(ENGLISH, never) == (
        f"🚫 This request of 2 images needs 10 credits, but your role <@&{ROLE}>'s cap of 10 credits leaves you only "
        "5 in total. Nothing was charged; try fewer images. "
        "A server admin can change it with `/credits set-role-limit`."
    )


def test_a_member_limit_refusal_does_not_mention_a_role() -> None:
    text = replies.limit_exceeded(ENGLISH, LimitExceeded("member", 20, 20, Period.DAY, RESETS, 5))
    assert "role" not in text and text.startswith("🚫 You can't start another background removal: 20 of 20")


def test_many_role_limits_are_listed_up_to_fifteen_and_counted_after() -> None:
    limits = [RoleLimit(ROLE + n, 1_000_000 - n) for n in range(250)]  # Discord allows 250 roles
    line = replies.role_limits_line(ENGLISH, limits, Period.MONTH)
    assert line.count("<@&") == replies.ROLE_LIMITS_SHOWN == 15
    assert line.endswith(" and 235 more.")
    assert len(line) < 1000  # leaves most of the 2,000 characters to the rest of /credits usage


def test_the_chart_caption_says_what_is_drawn_and_who_is_which_colour() -> None:
    legend = [("🟦", 11, 40), ("🟧", 12, 25), ("⬜", None, 5)]
    month = replies.chart_caption(ENGLISH, legend, period=Period.MONTH, limit=500)
    assert month == (
        "📊 The chart shows credits per day this month, stacked by member, with their running total against the "
        "server's limit of 500 credits (dashed).\n🟦 <@11> 40 · 🟧 <@12> 25 · ⬜ others 5"
    )
    day = replies.chart_caption(ENGLISH, legend, period=Period.DAY, limit=None)
    assert day.startswith("📊 The chart shows credits per day over the last 30 days, stacked by member, with their")
    assert "running total.\n" in day and "limit" not in day
    assert (
        replies.no_chart(ENGLISH, Period.NONE)
        == "📊 No credits were spent over the last 30 days, so there is no chart."
    )
