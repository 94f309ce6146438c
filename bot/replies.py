"""Every sentence the bot says to a member, in one place, so wording stays plain and consistent.

Pure functions of plain values: the cogs send them, the tests read them, and nothing here needs Discord.
`<t:…>` is Discord's timestamp markup, shown in each reader's own time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from bot.imaging import ImageProblem, ResultOptions
from bot.inputs import IMAGE_EXTENSIONS
from bot.jobs import Charge, Failure, FailureKind, JobResult, RequestResult, StillRunning, classify
from bot.ledger import HeldJobs, LimitExceeded, Payer, Period, RoleLimit, Usage
from bot.magic_hour import ProjectStatus
from bot.sources import MAX_MENU_IMAGES, Skip, Skipped

PERIOD_WORDS: dict[Period, str] = {
    Period.DAY: "today",
    Period.WEEK: "this week",
    Period.MONTH: "this month",
    Period.NONE: "in total",
}


def timestamp(moment: datetime, style: str = "R") -> str:
    return f"<t:{int(moment.timestamp())}:{style}>"


def code(text: str, limit: int = 100) -> str:
    """`text` as inline code whatever it holds: a member's file name with a backtick or a line break in it
    must not break out of the span (and take the rest of the message's markdown with it)."""
    flat = " ".join(text.replace("`", "ˋ").split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return f"`{flat or '?'}`"


def usage_line(usage: Usage) -> str:
    """Where the paying budget stands: the server's, or the member's own (a user install)."""
    period = PERIOD_WORDS[Period(usage.period)]
    whose = "You have" if usage.payer is Payer.USER else "This server has"
    line = f"{whose} used {usage.total} of {usage.limit} credits {period}".rstrip() + "."
    if usage.resets_at is not None:
        line += f" The limit resets {timestamp(usage.resets_at)}."
    return line


def limit_alert(threshold: int, usage: Usage) -> str:
    return f"📈 This server has reached {threshold} % of its credit limit. {usage_line(usage)}"


def not_enabled_here() -> str:
    return "🔒 This bot is not enabled in this server. Its owner decides where it runs."


def not_installed_here(in_server: bool) -> str:
    """A command from where nobody may pay: a server that did not add the bot, or a DM (user installs off)."""
    if in_server:
        return "🔒 This bot isn't installed in this server. A server admin can add it."
    return "This command only works in a server that added the bot."


def no_image_in_message(skipped: Sequence[Skipped] = ()) -> str:
    accepted = ", ".join(sorted(IMAGE_EXTENSIONS))
    text = (
        "That message has no image Magic Hour can use: no image attachment, embedded picture or PNG sticker "
        f"({accepted}). Nothing was charged."
    )
    return f"{text}\n{skipped_sources(skipped)}" if skipped else text


SKIP_REASONS: dict[Skip, str] = {
    Skip.VIDEO: "a video",
    Skip.GIF: "a GIF",
    Skip.LOTTIE: "an animated Lottie sticker",
    Skip.FORMAT: "an image format Magic Hour doesn't take",
    Skip.NOT_AN_IMAGE: "not an image",
    Skip.LINK: "its link doesn't show an image type Magic Hour can read",
}
SKIPPED_SHOWN = 10  # names listed before "and n more": the line stays far inside a message's 2,000 characters


def skipped_sources(skipped: Sequence[Skipped], left_out: int = 0) -> str:
    """What of a message was not sent to Magic Hour, and why, so nothing silently goes missing."""
    lines = []
    if skipped:
        named = ", ".join(f"{code(item.name, 60)} ({SKIP_REASONS[item.reason]})" for item in skipped[:SKIPPED_SHOWN])
        more = f" and {len(skipped) - SKIPPED_SHOWN} more" if len(skipped) > SKIPPED_SHOWN else ""
        lines.append(f"⚠️ Not supported, so left out: {named}{more}.")
    if left_out:
        first = f"the first {MAX_MENU_IMAGES} images of a message"
        lines.append(f"⚠️ A request takes {first}; {left_out} more were left out.")
    return "\n".join(lines)


def image_or_link_needed() -> str:
    return "❌ Attach an `image` or give a `url` to one. Nothing was charged."


def image_and_link_both() -> str:
    return "❌ Give either an `image` or a `url`, not both. Nothing was charged."


def input_refused(problem: str) -> str:
    return f"❌ {problem} Nothing was charged."


def default_avatar(name: str) -> str:
    return (
        f"🙂 {code(name, 60)} uses Discord's default avatar, so there is no picture of theirs to remove the "
        "background from. Nothing was charged."
    )


def queued(position: int) -> str:
    ahead = "1 job is" if position == 1 else f"{position} jobs are"
    return f"⏳ Queued: the bot is busy, {ahead} ahead of yours (position {position}). It starts on its own."


def progress(status: ProjectStatus | None) -> str:
    if status is ProjectStatus.RENDERING:
        return "🪄 Removing the background…"
    if status in (ProjectStatus.QUEUED, ProjectStatus.DRAFT):
        return "⏳ Waiting for Magic Hour to start…"
    return "📤 Sending your image to Magic Hour…"


def batch_progress(total: int, done: int, failed: int, rendering: int, slow: bool = False) -> str:
    """One line for a request of several images: how many are done, failed and in work."""
    text = f"🪄 Removing the backgrounds: {done} of {total} done"
    if failed:
        text += f", {failed} failed"
    if rendering:
        text += f", {rendering} in progress"
    text += "…"
    if slow:
        text += " Some take longer than usual; the bot keeps checking."
    return text


def credits_word(credits: int) -> str:
    return f"{credits} credit{'s' if credits != 1 else ''}"


def link_line(filename: str, result: JobResult, reason: str) -> str:
    download = result.project.downloads[0] if result.project.downloads else None
    if download is None:
        return f"{code(filename)} could not be fetched; ask the bot owner to check the logs."
    expires = timestamp(download.expires_at)
    return f"{code(filename)} is {reason}: download it from {download.url} (the link expires {expires})."


def image_failure(error: BaseException | str | None) -> str:
    """Why one image of a request has no result, in a few words (the request's other images went through)."""
    failed = classify(error)
    match failed.kind:
        case FailureKind.CANCELED_AT_MAGIC_HOUR:
            return f"canceled at Magic Hour. {_kept(failed)}"
        case FailureKind.FAILED_AT_MAGIC_HOUR:
            return f"Magic Hour couldn't process it: {failed.message}. {_kept(failed)}"
        case FailureKind.INPUT_UNREACHABLE:
            return f"Magic Hour couldn't fetch it (is the link public and still there?). {_kept(failed)}"
        case FailureKind.STILL_RUNNING:
            return "still being processed at Magic Hour; it will be posted here when it's done."
        case FailureKind.CANCELLED:
            return "cancelled; nothing was charged for it."
        case FailureKind.SHUTTING_DOWN:
            return "not started: the bot was restarting. Nothing was charged for it."
        case FailureKind.RECORDED:
            return f"not processed ({failed.message})."
    return failure_text(failed) if error is not None else "not processed."


def batch_success(result: RequestResult, *, links: list[str], following: int) -> str:
    """The final message of a request of several images: what it cost, what failed and why, where the rest is."""
    done = len(result.delivered)
    total = len(result.outcomes)
    credits = result.credits_charged
    still_running = any(isinstance(outcome.error, StillRunning) for outcome in result.failures)
    if done == 0 and still_running:
        text = "🐢 These images take longer than usual. The bot keeps checking and posts each result here."
    elif done == 0:
        text = f"❌ None of the {total} images could be processed."
    else:
        text = f"✅ Backgrounds removed from {done} of {total} images. They cost {credits_word(credits)} in total."
        asked = next((o.result.applied for o in result.delivered if o.result and o.result.not_applied is None), None)
        if asked is not None and (words := applied_options(asked)) is not None:
            text += f" Done to each: {words}."
    if result.usage is not None:
        text += f" {usage_line(result.usage)}"
    lines = [text]
    for outcome in result.delivered:
        if outcome.result is not None and outcome.result.not_applied is not None:
            name = code(outcome.filename or f"image {outcome.position + 1}")
            lines.append(f"ℹ️ {name}: {not_applied(outcome.result.not_applied)}")
    for outcome in result.failures:
        lines.append(f"❌ {code(outcome.filename or f'image {outcome.position + 1}')}: {image_failure(outcome.error)}")
    lines.extend(links)
    if following:
        lines.append(f"📎 {following} more message{'s' if following != 1 else ''} with the images follow.")
    return "\n".join(lines)


def batch_more(index: int, count: int) -> str:
    return f"📎 More results ({index} of {count})."


def slow() -> str:
    return "🐢 This is taking longer than usual. The bot keeps checking and will post the result here."


def dm_preface(channel_id: int) -> str:
    return f"I couldn't post in <#{channel_id}>, so here is your background removal:"


def applied_options(options: ResultOptions) -> str | None:
    """What was done to a result locally, in a few words: "trimmed, on #FFFFFF, as WebP"."""
    words = {
        "trim": lambda _value: "trimmed to the subject",
        "color": lambda value: f"on {value}",
        "format": lambda value: f"as {'WebP' if value == 'webp' else value.upper()}",
    }
    parts = [words[option.name](option.value) for option in options.describe()]
    return ", ".join(parts) if parts else None


def not_applied(problem: ImageProblem) -> str:
    """Why a result went out as Magic Hour made it although options were asked for."""
    match problem:
        case ImageProblem.TOO_LARGE:
            return "The options were not applied: the image is too large to process here."
        case ImageProblem.TOO_MANY_BYTES:
            return "The options were not applied: the processed image would be too large to upload here."
        case ImageProblem.NOTHING_VISIBLE:
            return "The options were not applied: nothing is left of the subject to trim to."
    return "The options were not applied: the image could not be read."


def _options_note(result: JobResult) -> str:
    if result.not_applied is not None:
        return f" {not_applied(result.not_applied)}"
    if (done := applied_options(result.applied)) is not None:
        return f" Done: {done}."
    return ""


def success(result: JobResult, *, attached: bool, reason: str | None = None) -> str:
    credits = result.credits_charged
    text = f"✅ Background removed. It cost {credits} credit{'s' if credits != 1 else ''}."
    text += _options_note(result)
    if result.usage is not None:
        text += f" {usage_line(result.usage)}"
    if attached:
        return text
    download = result.project.downloads[0] if result.project.downloads else None
    if download is None:
        return text + "\nThe result could not be fetched; ask the bot owner to check the logs."
    if reason is None:
        reason = "too large to upload here" if result.too_large or result.file is not None else "not attached"
    expires = timestamp(download.expires_at)
    return f"{text}\nThe image is {reason}: download it from {download.url} (the link expires {expires})."


def interrupted(resumable: bool = True) -> str:
    if resumable:
        return "🔁 The bot is restarting. Your image is still being processed and the result will be posted here."
    return (
        "🔁 The bot restarted before Magic Hour confirmed your job, so it can't promise a result. "
        "Its credits stay held until that's known; a server admin can release them with `/credits release-held`."
    )


def limit_exceeded(error: LimitExceeded) -> str:
    if error.role_id is not None:
        return role_limit_exceeded(error)
    if error.scope == "bot":
        # The bot-wide budget spans every server: its figures are other servers' business.
        text = f"🚫 The bot's credit budget {PERIOD_WORDS[Period(error.period)]} is used up, so no new jobs can start."
        if error.images > 1:
            text = (
                f"🚫 This request of {error.images} images needs {error.cost} credits, more than the bot's credit "
                f"budget has left {PERIOD_WORDS[Period(error.period)]}. Nothing was charged; try fewer images."
            )
        if error.resets_at is not None:
            return text + f" It resets {timestamp(error.resets_at)}."
        return text + " Ask the bot owner to raise it."
    whose = "This server" if error.scope == "guild" else "You"
    period = PERIOD_WORDS[Period(error.period)]
    if error.images > 1:
        left = max(0, error.limit - error.used)
        has = "this server has" if error.scope == "guild" else "you have"
        text = (
            f"🚫 This request of {error.images} images needs {error.cost} credits, but {has} only {left} of "
            f"{error.limit} left {period}. Nothing was charged; try fewer images."
        )
        if error.resets_at is not None:
            return text + f" The limit resets {timestamp(error.resets_at)}."
        return text + _who_raises(error)
    text = (
        f"🚫 {whose} can't start another background removal: {error.used} of {error.limit} credits "
        f"used {period}, and each one costs {error.cost}."
    )
    if error.resets_at is not None:
        text += f" The limit resets {timestamp(error.resets_at)}."
    else:
        text += _who_raises(error)
    return text


def _who_raises(error: LimitExceeded) -> str:
    if error.scope == "user":  # a member's own install: its budget is the bot owner's setting
        return " The bot's owner sets this personal budget."
    return " A server admin can raise it with `/credits set-limit`."


def _jobs(count: int) -> str:
    return "1 job" if count == 1 else f"{count} jobs"


def held_line(held: HeldJobs) -> str:
    jobs = _jobs(held.count)
    since = f" since {timestamp(held.since)}" if held.since is not None else ""
    return (
        f"⚠️ {held.credits} credits are held by {jobs} Magic Hour never confirmed{since}. "
        "A server admin can release them with `/credits release-held`."
    )


def release_held_question(held: HeldJobs) -> str:
    jobs = _jobs(held.count)
    since = f", the oldest from {timestamp(held.since, 'f')}" if held.since is not None else ""
    return (
        f"{jobs.capitalize()} ({held.credits} credits) never got an answer from Magic Hour{since}. "
        "Releasing gives the credits back to this server's budget. If Magic Hour did run them, the bot owner "
        "pays for them anyway. Release them?"
    )


def released_held(count: int, credits: int) -> str:
    if count == 0:
        return "Nothing was held any more: there was nothing to release."
    jobs = _jobs(count)
    return f"✅ Released {jobs}: {credits} credits are back in this server's budget. The job history records it."


def ceiling_exceeded(requested: int, ceiling: int) -> str:
    return (
        f"❌ {requested} credits is above this server's ceiling of {ceiling} credits. "
        "Only the bot's owner can raise it (with `python -m bot grant`)."
    )


def export_summary(rows: int, left_out: int) -> str:
    text = f"{rows} job(s) this period."
    if left_out:
        text += f" The file holds the first {rows - left_out}: {left_out} more did not fit Discord's upload limit."
    return text


def _kept(failed: Failure) -> str:
    if failed.kept <= 0:
        return "No credits were kept."
    return f"Magic Hour kept {credits_word(failed.kept)} for it."


def failure(error: BaseException) -> str:
    """Plain words for what happened and what to do; details that only the owner can act on stay in the log."""
    return failure_text(classify(error))


def failure_text(failed: Failure) -> str:
    """One sentence per kind of failure (`bot.jobs.outcomes`): the decision is made there, the words here."""
    match failed.kind:
        case FailureKind.LIMIT:
            assert failed.limit is not None
            return limit_exceeded(failed.limit)
        case FailureKind.MEMBER_BUSY:
            return "⏳ You already have a background removal running. Wait for it to finish, then try again."
        case FailureKind.SHUTTING_DOWN:
            return "🔁 The bot is restarting and isn't taking new jobs. Try again in a minute; nothing was charged."
        case FailureKind.CANCELLED:
            return "Cancelled. Nothing was charged."
        case FailureKind.STILL_RUNNING:
            return slow()
        case FailureKind.CANCELED_AT_MAGIC_HOUR:
            return f"❌ The job was canceled at Magic Hour. {_kept(failed)}"
        case FailureKind.FAILED_AT_MAGIC_HOUR:
            return f"❌ Magic Hour couldn't process this image: {failed.message}. {_kept(failed)}"
        case FailureKind.INPUT_UNREACHABLE:
            return (
                "❌ Magic Hour couldn't fetch the image. If it came from a link, check that the link is public and "
                f"still works. {_kept(failed)}"
            )
        case FailureKind.REJECTED:
            return f"❌ Magic Hour rejected the image: {failed.message}. Try another image; nothing was charged."
        case FailureKind.OUT_OF_CREDITS:
            return (
                "💳 The bot's Magic Hour account is out of credits. "
                "Ask the bot owner to top it up; nothing was charged."
            )
        case FailureKind.MISCONFIGURED:
            return (
                "🔧 The bot is misconfigured and can't use Magic Hour right now. Please ask the bot owner to check it."
            )
        case FailureKind.OUTCOME_UNKNOWN:
            return (
                "⚠️ Magic Hour didn't answer in time, so the bot can't tell whether your job started. "
                "Its credits stay reserved until that's known; please don't resend straight away."
            )
        case FailureKind.BUSY:
            return "🕐 Magic Hour is busy right now. Please try again in a few minutes; nothing was charged."
        case FailureKind.REFUSED:
            return f"❌ Magic Hour refused the job (status {failed.status}). Nothing was charged."
        case FailureKind.UNEXPECTED if failed.charge is Charge.HELD:
            return (
                "❌ Something went wrong on the bot's side after your image was sent to Magic Hour. Its credits stay "
                "reserved until the bot owner checks it."
            )
    return "❌ Something went wrong. Please try again later."


# -- results made for Discord: the command's options, and the Add as emoji / Add as sticker buttons ---------------

Expression = Literal["emoji", "sticker"]


def option_refused(message: str) -> str:
    """A `color` or `format` the bot can't use; `message` is the parser's own sentence (`BadColor`, `BadFormat`)."""
    return f"❌ {message} Nothing was charged."


def option_with_background(option: Literal["color", "trim"]) -> str:
    """`color` or `trim` together with `background`: the background image already fills the result."""
    if option == "color":
        return "❌ Choose either `color` or `background`: both set what goes behind the subject. Nothing was charged."
    return (
        "❌ `trim` can't be used with `background`: the background fills the whole picture, so there is no empty "
        "space to trim. Nothing was charged."
    )


def _article(kind: Expression) -> str:
    return "an emoji" if kind == "emoji" else "a sticker"


def expression_created(kind: Expression, name: str, shown: str | None = None) -> str:
    """`shown` is the emoji's own markup (`<:cat:123>`), so the member sees it in the answer."""
    if kind == "emoji":
        emoji = f"{shown} " if shown else ""
        return f"✅ Added the emoji {emoji}as {code(':' + name + ':')}. Everyone here can use it now."
    return f"✅ Added the sticker {code(name)} to this server."


def expression_member_lacks_permission(kind: Expression) -> str:
    return (
        f"🔒 Adding {_article(kind)} needs the Create Expressions or Manage Expressions permission, which you "
        "don't have here. Nothing was added."
    )


def expression_bot_lacks_permission(kind: Expression) -> str:
    return (
        f"🔒 I can't add {_article(kind)}: I need the Create Expressions permission in this server. A server admin "
        "can give it to my role. Nothing was added."
    )


def expression_no_slots(kind: Expression) -> str:
    whose = "emoji" if kind == "emoji" else "sticker"
    return f"📦 This server has no free {whose} slots. Remove one (or boost the server) and try again."


def expression_not_made(kind: Expression, problem: ImageProblem) -> str:
    """Why no emoji or sticker could be made from the result (`make_emoji`/`make_sticker`, or Discord's size check)."""
    match problem:
        case ImageProblem.TOO_MANY_BYTES:
            limit = "256 KiB" if kind == "emoji" else "512 KiB"
            return f"❌ The image could not be made small enough for {_article(kind)} ({limit}). Nothing was added."
        case ImageProblem.NOTHING_VISIBLE:
            return f"❌ The image is fully transparent: there is nothing to make {_article(kind)} of."
        case ImageProblem.TOO_LARGE:
            return f"❌ The image is too large to turn into {_article(kind)} here. Nothing was added."
    return f"❌ The image could not be read, so no {kind} was made."


def expression_no_image() -> str:
    return "❌ This message has no image to add."


def expression_fetch_failed() -> str:
    return "❌ I couldn't fetch the image from Discord. Try again in a moment; nothing was added."


def expression_only_in_servers() -> str:
    return "Emoji and stickers can only be added in a server that added the bot."


def expression_refused(kind: Expression) -> str:
    return f"❌ Discord refused to add {_article(kind)}. Try again later; nothing was added."


# -- role limits and the usage chart ---------------------------------------------------------------------------

PER_PERIOD: dict[Period, str] = {
    Period.DAY: "a day",
    Period.WEEK: "a week",
    Period.MONTH: "a month",
    Period.NONE: "in total",
}
ROLE_LIMITS_SHOWN = 15  # role mentions listed before "and n more": the answer stays far inside 2,000 characters


def role(role_id: int) -> str:
    """A role mention; the bot sends no pings (its allowed mentions are none), so it only names the role."""
    return f"<@&{role_id}>"


def role_limit_exceeded(error: LimitExceeded) -> str:
    """A member stopped by the cap one of their roles gives: the role, the cap, and when it resets."""
    period = PERIOD_WORDS[Period(error.period)]
    assert error.role_id is not None
    cap = f"your role {role(error.role_id)}'s cap of {error.limit} credits"
    if error.images > 1:
        left = max(0, error.limit - error.used)
        text = (
            f"🚫 This request of {error.images} images needs {error.cost} credits, but {cap} leaves you only "
            f"{left} {period}. Nothing was charged; try fewer images."
        )
    else:
        text = (
            f"🚫 You can't start another background removal: you have used {error.used} credits of {cap} "
            f"{period}, and each one costs {error.cost}."
        )
    if error.resets_at is not None:
        return text + f" The limit resets {timestamp(error.resets_at)}."
    return text + " A server admin can change it with `/credits set-role-limit`."


def own_usage_line(usage: Usage) -> str:
    """The member's own spend against their cap, and the role that gives it when a role does."""
    text = f"You have used {usage.member_used or 0} credits"
    if usage.member_cap is None:
        return text + "."
    if usage.member_cap_role_id is not None:
        return text + f" of your {usage.member_cap}-credit cap, from your role {role(usage.member_cap_role_id)}."
    return text + f" of your {usage.member_cap}-credit limit."


def role_limits_line(limits: Sequence[RoleLimit], period: Period) -> str:
    """The server's role limits, largest first, and the rule that picks a member's cap among them."""
    shown = " · ".join(f"{role(limit.role_id)} {limit.credits}" for limit in limits[:ROLE_LIMITS_SHOWN])
    more = f" and {len(limits) - ROLE_LIMITS_SHOWN} more" if len(limits) > ROLE_LIMITS_SHOWN else ""
    return (
        f"**Role limits** (credits per member {PER_PERIOD[Period(period)]}; a member's largest replaces the member "
        f"limit): {shown}{more}."
    )


def role_limit_set(role_id: int, credits: int, period: Period) -> str:
    return (
        f"✅ Members with {role(role_id)} may now use up to {credits} credits each {PER_PERIOD[Period(period)]}. "
        "For them it replaces the member limit; a member with several limited roles gets the largest."
    )


def role_limit_removed(role_id: int) -> str:
    return f"✅ {role(role_id)} has no limit of its own now."


def everyone_role_refused() -> str:
    return "❌ Every member has @everyone: to limit every member, use `/credits set-member-limit`."


def chart_caption(legend: Sequence[tuple[str, int | None, int]], *, period: Period, limit: int | None) -> str:
    """What the attached chart shows, in one sentence, then which colour is whom (the image holds no names)."""
    when = _chart_window_words(period)
    text = f"📊 The chart shows credits per day {when}, stacked by member, with their running total"
    text += f" against the server's limit of {limit} credits (dashed)." if limit is not None else "."
    entries = [f"{square} {'others' if who is None else f'<@{who}>'} {credits}" for square, who, credits in legend]
    return text + "\n" + " · ".join(entries)


def _chart_window_words(period: Period) -> str:
    """The chart covers the current week or month, else (a daily or one-off limit) the last 30 days."""
    chosen = Period(period)
    return PERIOD_WORDS[chosen] if chosen in (Period.WEEK, Period.MONTH) else "over the last 30 days"


def no_chart(period: Period) -> str:
    return f"📊 No credits were spent {_chart_window_words(period)}, so there is no chart."


def chart_failed() -> str:
    return "📊 The chart could not be drawn this time; the figures above are complete."
