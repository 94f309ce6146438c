"""Every sentence the bot says to a member or a server, in one place, in the reader's language.

Pure functions of plain values and a `Words` (one language: `bot.i18n.words_for(interaction.locale)`): the
adapter and the cogs send them, the tests read them, and nothing here needs Discord. Each sentence's English text
is its message id in the catalogs (`bot/locales/`); where one English sentence says different things, a short
context tells them apart. Quantities go through `w.number` (1,000 / 1.000 / 1 000) and plurals through
`w.ngettext`. `<t:…>` is Discord's timestamp markup, shown in each reader's own language and time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from bot.i18n import Message, Words
from bot.imaging import ImageProblem, ResultOptions
from bot.inputs import IMAGE_EXTENSIONS
from bot.jobs import Charge, Failure, FailureKind, JobResult, RequestResult, StillRunning, classify
from bot.ledger import HeldJobs, LimitExceeded, Payer, Period, RoleLimit, Usage
from bot.magic_hour import ProjectStatus
from bot.markdown import code
from bot.sources import MAX_MENU_IMAGES, Skip, Skipped

SKIPPED_SHOWN = 10  # names listed before "and n more": the line stays far inside a message's 2,000 characters
ROLE_LIMITS_SHOWN = 15  # role mentions listed before "and n more"
Expression = Literal["emoji", "sticker"]


def timestamp(moment: datetime, style: str = "R") -> str:
    return f"<t:{int(moment.timestamp())}:{style}>"


def period_words(w: Words, period: Period | str) -> str:
    """When a count starts over, as it ends a sentence: "today", "this week", "this month", "in total"."""
    match Period(period):
        case Period.DAY:
            return w.pgettext("period", "today")
        case Period.WEEK:
            return w.pgettext("period", "this week")
        case Period.MONTH:
            return w.pgettext("period", "this month")
    return w.pgettext("period", "in total")


def per_period(w: Words, period: Period | str) -> str:
    """A rate's period: "per day", "per week", "per month", "in total"."""
    match Period(period):
        case Period.DAY:
            return w.pgettext("per period", "per day")
        case Period.WEEK:
            return w.pgettext("per period", "per week")
        case Period.MONTH:
            return w.pgettext("per period", "per month")
    return w.pgettext("per period", "in total")


def credits(w: Words, amount: int) -> str:
    """ "1 credit", "5 credits", in the reader's plural rules."""
    return w.ngettext("{n} credit", "{n} credits", amount)


def resets(w: Words, moment: datetime | None) -> str:
    return w.gettext("The limit resets {when}.", when=timestamp(moment)) if moment is not None else ""


def usage_line(w: Words, usage: Usage) -> str:
    """Where the paying budget stands: the server's, or the member's own (a user install)."""
    used, limit, period = w.number(usage.total), w.number(usage.limit), period_words(w, usage.period)
    if usage.payer is Payer.USER:
        # Translators: {period} is one of "today", "this week", "this month", "in total".
        line = w.ngettext(
            "You have used {used} of {limit} credit {period}.",
            "You have used {used} of {limit} credits {period}.",
            usage.limit,
            used=used,
            limit=limit,
            period=period,
        )
    else:
        line = w.ngettext(
            "This server has used {used} of {limit} credit {period}.",
            "This server has used {used} of {limit} credits {period}.",
            usage.limit,
            used=used,
            limit=limit,
            period=period,
        )
    return w.join(line, resets(w, usage.resets_at))


def limit_alert(w: Words, threshold: int, usage: Usage) -> str:
    """Posted in the server's alert channel, in the server's language."""
    reached = w.gettext("📈 This server has reached {percent}% of its credit limit.", percent=w.number(threshold))
    return w.join(reached, usage_line(w, usage))


def not_enabled_here(w: Words) -> str:
    return w.gettext("🔒 This bot is not enabled in this server. Its owner decides where it runs.")


def not_installed_here(w: Words, in_server: bool) -> str:
    """A command from where nobody may pay: a server that did not add the bot, or a DM (user installs off)."""
    if in_server:
        return w.gettext("🔒 This bot isn't installed in this server. A server admin can add it.")
    return w.gettext("This command only works in a server that added the bot.")


def no_image_in_message(w: Words, skipped: Sequence[Skipped] = ()) -> str:
    text = w.gettext(
        "That message has no image Magic Hour can use: no image attachment, embedded picture or PNG sticker "
        "({accepted}). Nothing was charged.",
        accepted=", ".join(sorted(IMAGE_EXTENSIONS)),
    )
    return f"{text}\n{skipped_sources(w, skipped)}" if skipped else text


def skip_reason(w: Words, reason: Skip) -> str:
    match reason:
        case Skip.VIDEO:
            return w.pgettext("left out", "a video")
        case Skip.GIF:
            return w.pgettext("left out", "a GIF")
        case Skip.LOTTIE:
            return w.pgettext("left out", "an animated Lottie sticker")
        case Skip.FORMAT:
            return w.pgettext("left out", "an image format Magic Hour doesn't take")
        case Skip.NOT_AN_IMAGE:
            return w.pgettext("left out", "not an image")
    return w.pgettext("left out", "its link doesn't show an image type Magic Hour can read")


def skipped_sources(w: Words, skipped: Sequence[Skipped], left_out: int = 0) -> str:
    """What of a message was not sent to Magic Hour, and why, so nothing silently goes missing."""
    lines = []
    if skipped:
        named = ", ".join(f"{code(item.name, 60)} ({skip_reason(w, item.reason)})" for item in skipped[:SKIPPED_SHOWN])
        extra = len(skipped) - SKIPPED_SHOWN
        if extra > 0:
            named = w.ngettext("{names} and {n} more", "{names} and {n} more", extra, names=named)
        lines.append(w.gettext("⚠️ Not supported, so left out: {names}.", names=named))
    if left_out:
        lines.append(
            w.ngettext(
                "⚠️ A request takes the first {most} images of a message; {n} more was left out.",
                "⚠️ A request takes the first {most} images of a message; {n} more were left out.",
                left_out,
                most=w.number(MAX_MENU_IMAGES),
            )
        )
    return "\n".join(lines)


def image_or_link_needed(w: Words) -> str:
    return w.gettext("❌ Attach an `image` or give a `url` to one. Nothing was charged.")


def image_and_link_both(w: Words) -> str:
    return w.gettext("❌ Give either an `image` or a `url`, not both. Nothing was charged.")


def input_refused(w: Words, problem: Message) -> str:
    """A file or link refused before anything was charged; `problem` says why (`inputs`, `sources`)."""
    return w.gettext("❌ {problem} Nothing was charged.", problem=w.say(problem))


def default_avatar(w: Words, name: str) -> str:
    return w.gettext(
        "🙂 {name} uses Discord's default avatar, so there is no picture of theirs to remove the background from. "
        "Nothing was charged.",
        name=code(name, 60),
    )


def queued(w: Words, position: int) -> str:
    return w.gettext(
        "⏳ Queued: the bot is busy. Your job is number {position} in line and starts on its own.",
        position=w.number(position),
    )


def progress(w: Words, status: ProjectStatus | None) -> str:
    if status is ProjectStatus.RENDERING:
        return w.gettext("🪄 Removing the background…")
    if status in (ProjectStatus.QUEUED, ProjectStatus.DRAFT):
        return w.gettext("⏳ Waiting for Magic Hour to start…")
    return w.gettext("📤 Sending your image to Magic Hour…")


def batch_progress(w: Words, total: int, done: int, failed: int, rendering: int, slow: bool = False) -> str:
    """One line for a request of several images: how many are done, failed and in work."""
    parts = [
        w.gettext("🪄 Removing the backgrounds: {done} of {total} done", done=w.number(done), total=w.number(total))
    ]
    if failed:
        parts.append(w.gettext("{failed} failed", failed=w.number(failed)))
    if rendering:
        parts.append(w.gettext("{rendering} in progress", rendering=w.number(rendering)))
    text = ", ".join(parts) + "…"
    if slow:
        text = w.join(text, w.gettext("Some take longer than usual; the bot keeps checking."))
    return text


def link_line(w: Words, filename: str, result: JobResult, reason: str) -> str:
    download = result.project.downloads[0] if result.project.downloads else None
    if download is None:
        return w.gettext("{name} could not be fetched; ask the bot owner to check the logs.", name=code(filename))
    return w.gettext(
        "{name} is {reason}: download it from {url} (the link expires {when}).",
        name=code(filename),
        reason=reason,
        url=download.url,
        when=timestamp(download.expires_at),
    )


def too_large_here(w: Words) -> str:
    # Translators: completes "The image is …" / "{name} is …" before a download link.
    return w.pgettext("link reason", "too large to upload here")


def not_attached(w: Words) -> str:
    return w.pgettext("link reason", "not attached")


def could_not_attach(w: Words) -> str:
    return w.pgettext("link reason", "could not be attached here")


def image_label(w: Words, filename: str | None, position: int) -> str:
    return code(filename) if filename else code(w.gettext("image {number}", number=w.number(position + 1)))


def image_failure(w: Words, error: BaseException | str | None) -> str:
    """Why one image of a request has no result, in a few words (the request's other images went through)."""
    failed = classify(error)
    match failed.kind:
        case FailureKind.CANCELED_AT_MAGIC_HOUR:
            return w.gettext("canceled at Magic Hour. {kept}", kept=_kept(w, failed))
        case FailureKind.FAILED_AT_MAGIC_HOUR:
            return w.gettext(
                "Magic Hour couldn't process it: {reason}. {kept}", reason=failed.message, kept=_kept(w, failed)
            )
        case FailureKind.INPUT_UNREACHABLE:
            return w.gettext(
                "Magic Hour couldn't fetch it (is the link public and still there?). {kept}", kept=_kept(w, failed)
            )
        case FailureKind.STILL_RUNNING:
            return w.gettext("still being processed at Magic Hour; it will be posted here when it's done.")
        case FailureKind.CANCELLED:
            return w.gettext("cancelled; nothing was charged for it.")
        case FailureKind.SHUTTING_DOWN:
            return w.gettext("not started: the bot was restarting. Nothing was charged for it.")
        case FailureKind.RECORDED:
            return w.gettext("not processed ({reason}).", reason=failed.message)
    return failure_text(w, failed) if error is not None else w.gettext("not processed.")


def batch_success(w: Words, result: RequestResult, *, links: list[str], following: int) -> str:
    """The final message of a request of several images: what it cost, what failed and why, where the rest is."""
    done, total = len(result.delivered), len(result.outcomes)
    still_running = any(isinstance(outcome.error, StillRunning) for outcome in result.failures)
    if done == 0 and still_running:
        text = w.gettext("🐢 These images take longer than usual. The bot keeps checking and posts each result here.")
    elif done == 0:
        text = w.ngettext(
            "❌ The image could not be processed.", "❌ None of the {n} images could be processed.", total
        )
    else:
        text = w.ngettext(
            "✅ Backgrounds removed from {done} of {n} image. They cost {cost} in total.",
            "✅ Backgrounds removed from {done} of {n} images. They cost {cost} in total.",
            total,
            done=w.number(done),
            cost=credits(w, result.credits_charged),
        )
        asked = next((o.result.applied for o in result.delivered if o.result and o.result.not_applied is None), None)
        if asked is not None and (applied := applied_options(w, asked)) is not None:
            text = w.join(text, w.gettext("Done to each: {options}.", options=applied))
    if result.usage is not None:
        text = w.join(text, usage_line(w, result.usage))
    lines = [text]
    for outcome in result.delivered:
        if outcome.result is not None and outcome.result.not_applied is not None:
            name = image_label(w, outcome.filename, outcome.position)
            lines.append(f"ℹ️ {name}: {not_applied(w, outcome.result.not_applied)}")
    for outcome in result.failures:
        lines.append(f"❌ {image_label(w, outcome.filename, outcome.position)}: {image_failure(w, outcome.error)}")
    lines.extend(links)
    if following:
        lines.append(
            w.ngettext(
                "📎 {n} more message with the images follows.",
                "📎 {n} more messages with the images follow.",
                following,
            )
        )
    return "\n".join(lines)


def batch_more(w: Words, index: int, count: int) -> str:
    return w.gettext("📎 More results ({index} of {count}).", index=w.number(index), count=w.number(count))


def slow(w: Words) -> str:
    return w.gettext("🐢 This is taking longer than usual. The bot keeps checking and will post the result here.")


def dm_preface(w: Words, channel_id: int) -> str:
    return w.gettext("I couldn't post in {channel}, so here is your background removal:", channel=f"<#{channel_id}>")


def applied_options(w: Words, options: ResultOptions) -> str | None:
    """What was done to a result locally, in a few words: "trimmed to the subject, on #FFFFFF, as WebP"."""
    parts = []
    for option in options.describe():
        if option.name == "trim":
            parts.append(w.gettext("trimmed to the subject"))
        elif option.name == "color":
            parts.append(w.gettext("on {color}", color=option.value))
        else:
            parts.append(w.gettext("as {format}", format="WebP" if option.value == "webp" else option.value.upper()))
    return ", ".join(parts) if parts else None


def not_applied(w: Words, problem: ImageProblem) -> str:
    """Why a result went out as Magic Hour made it although options were asked for."""
    match problem:
        case ImageProblem.TOO_LARGE:
            return w.gettext("The options were not applied: the image is too large to process here.")
        case ImageProblem.TOO_MANY_BYTES:
            return w.gettext("The options were not applied: the processed image would be too large to upload here.")
        case ImageProblem.NOTHING_VISIBLE:
            return w.gettext("The options were not applied: nothing is left of the subject to trim to.")
    return w.gettext("The options were not applied: the image could not be read.")


def _options_note(w: Words, result: JobResult) -> str:
    if result.not_applied is not None:
        return not_applied(w, result.not_applied)
    if (applied := applied_options(w, result.applied)) is not None:
        return w.gettext("Done: {options}.", options=applied)
    return ""


def success(w: Words, result: JobResult, *, attached: bool, reason: str | None = None) -> str:
    text = w.gettext("✅ Background removed. It cost {cost}.", cost=credits(w, result.credits_charged))
    text = w.join(text, _options_note(w, result), usage_line(w, result.usage) if result.usage is not None else "")
    if attached:
        return text
    download = result.project.downloads[0] if result.project.downloads else None
    if download is None:
        return text + "\n" + w.gettext("The result could not be fetched; ask the bot owner to check the logs.")
    if reason is None:
        reason = too_large_here(w) if result.too_large or result.file is not None else not_attached(w)
    link = w.gettext(
        "The image is {reason}: download it from {url} (the link expires {when}).",
        reason=reason,
        url=download.url,
        when=timestamp(download.expires_at),
    )
    return f"{text}\n{link}"


def interrupted(w: Words, resumable: bool = True) -> str:
    if resumable:
        return w.gettext(
            "🔁 The bot is restarting. Your image is still being processed and the result will be posted here."
        )
    return w.gettext(
        "🔁 The bot restarted before Magic Hour confirmed your job, so it can't promise a result. Its credits stay "
        "held until that's known; a server admin can release them with `/credits release-held`."
    )


def limit_exceeded(w: Words, error: LimitExceeded) -> str:
    if error.role_id is not None:
        return role_limit_exceeded(w, error)
    period = period_words(w, error.period)
    if error.scope == "bot":
        # The bot-wide budget spans every server: its figures are other servers' business.
        if error.images > 1:
            text = w.gettext(
                "🚫 This request of {images} images needs {cost}, more than the bot's credit budget has left "
                "{period}. Nothing was charged; try fewer images.",
                images=w.number(error.images),
                cost=credits(w, error.cost),
                period=period,
            )
        else:
            text = w.gettext("🚫 The bot's credit budget {period} is used up, so no new jobs can start.", period=period)
        if error.resets_at is not None:
            return w.join(text, w.gettext("It resets {when}.", when=timestamp(error.resets_at)))
        return w.join(text, w.gettext("Ask the bot owner to raise it."))
    if error.images > 1:
        left = w.number(max(0, error.limit - error.used))
        values = {
            "images": w.number(error.images),
            "cost": credits(w, error.cost),
            "left": left,
            "limit": w.number(error.limit),
            "period": period,
        }
        if error.scope == "guild":
            text = w.gettext(
                "🚫 This request of {images} images needs {cost}, but this server has only {left} of {limit} left "
                "{period}. Nothing was charged; try fewer images.",
                **values,
            )
        else:
            text = w.gettext(
                "🚫 This request of {images} images needs {cost}, but you have only {left} of {limit} left "
                "{period}. Nothing was charged; try fewer images.",
                **values,
            )
        return w.join(text, resets(w, error.resets_at) or _who_raises(w, error))
    values = {"used": w.number(error.used), "period": period}
    if error.scope == "guild":
        text = w.ngettext(
            "🚫 This server can't start another background removal: {used} of {n} credit used {period}.",
            "🚫 This server can't start another background removal: {used} of {n} credits used {period}.",
            error.limit,
            **values,
        )
    else:
        text = w.ngettext(
            "🚫 You can't start another background removal: {used} of {n} credit used {period}.",
            "🚫 You can't start another background removal: {used} of {n} credits used {period}.",
            error.limit,
            **values,
        )
    each = w.gettext("Each one costs {cost}.", cost=credits(w, error.cost))
    return w.join(text, each, resets(w, error.resets_at) or _who_raises(w, error))


def _who_raises(w: Words, error: LimitExceeded) -> str:
    if error.scope == "user":  # a member's own install: its budget is the bot owner's setting
        return w.gettext("The bot's owner sets this personal budget.")
    if error.scope == "member":
        return w.gettext("A server admin can raise the member limit with `/credits set-member-limit`.")
    return w.gettext("A server admin can raise the server's limit with `/credits set-limit`.")


def _jobs(w: Words, count: int) -> str:
    return w.ngettext("{n} job", "{n} jobs", count)


def held_line(w: Words, held: HeldJobs) -> str:
    if held.since is not None:
        return w.ngettext(
            "⚠️ {n} credit is held by {jobs} Magic Hour never confirmed since {when}. A server admin can release "
            "it with `/credits release-held`.",
            "⚠️ {n} credits are held by {jobs} Magic Hour never confirmed since {when}. A server admin can release "
            "them with `/credits release-held`.",
            held.credits,
            jobs=_jobs(w, held.count),
            when=timestamp(held.since, "f"),
        )
    return w.ngettext(
        "⚠️ {n} credit is held by {jobs} Magic Hour never confirmed. A server admin can release it with "
        "`/credits release-held`.",
        "⚠️ {n} credits are held by {jobs} Magic Hour never confirmed. A server admin can release them with "
        "`/credits release-held`.",
        held.credits,
        jobs=_jobs(w, held.count),
    )


def release_held_question(w: Words, held: HeldJobs) -> str:
    values = {"jobs": _jobs(w, held.count), "credits": credits(w, held.credits)}
    if held.since is not None:
        asked = w.gettext(
            "{jobs} ({credits}) never got an answer from Magic Hour, the oldest from {when}.",
            when=timestamp(held.since, "f"),
            **values,
        )
    else:
        asked = w.gettext("{jobs} ({credits}) never got an answer from Magic Hour.", **values)
    release = w.gettext(
        "Releasing gives the credits back to this server's budget. If Magic Hour did run them, the bot owner pays "
        "for them anyway. Release them?"
    )
    return w.join(asked, release)


def released_held(w: Words, count: int, amount: int) -> str:
    if count == 0:
        return w.gettext("Nothing was held any more: there was nothing to release.")
    return w.ngettext(
        "✅ Released {jobs}: {n} credit is back in this server's budget. The job history records it.",
        "✅ Released {jobs}: {n} credits are back in this server's budget. The job history records it.",
        amount,
        jobs=_jobs(w, count),
    )


def nothing_held(w: Words) -> str:
    return w.gettext("Nothing is held: every job's outcome is known.")


def nothing_released(w: Words) -> str:
    return w.gettext("Nothing was released.")


def ceiling_exceeded(w: Words, requested: int, ceiling: int) -> str:
    return w.gettext(
        "❌ {requested} is above this server's ceiling of {ceiling}. Only the bot's owner can raise it (with "
        "`python -m bot grant`).",
        requested=credits(w, requested),
        ceiling=credits(w, ceiling),
    )


def limit_set(w: Words, usage: Usage) -> str:
    return w.join(w.gettext("✅ Limit set."), usage_line(w, usage))


def member_limit_set(w: Words, amount: int | None) -> str:
    if amount is None:
        return w.gettext("✅ Member limit removed.")
    return w.ngettext(
        "✅ Each member may now use {n} credit per period.",
        "✅ Each member may now use {n} credits per period.",
        amount,
    )


def alerts_set(w: Words, channel_id: int | None) -> str:
    if channel_id is None:
        return w.gettext("✅ Alerts turned off.")
    return w.gettext("✅ Alerts will be posted in {channel}.", channel=f"<#{channel_id}>")


def no_jobs_yet(w: Words) -> str:
    return w.gettext("No jobs yet.")


def reserved_for_running(w: Words, amount: int) -> str:
    return w.ngettext(
        "{n} of those is reserved for jobs still running.", "{n} of those are reserved for jobs still running.", amount
    )


def top_members(w: Words, top: Sequence[tuple[int, int]]) -> str:
    listed = ", ".join(f"<@{user}> {w.number(amount)}" for user, amount in top)
    return w.gettext("**Top members:** {members}", members=listed)


def history_line(w: Words, when: datetime, user_id: int, status: str, amount: int) -> str:
    return w.gettext(
        "{when} {member} · {status} · {credits}",
        when=timestamp(when, "f"),
        member=f"<@{user_id}>",
        status=job_status(w, status),
        credits=credits(w, amount),
    )


def job_status(w: Words, status: str) -> str:
    """A job's status as the history shows it."""
    names = {
        "reserved": w.pgettext("job status", "reserved"),
        "sending": w.pgettext("job status", "sending"),
        "held": w.pgettext("job status", "held"),
        "submitted": w.pgettext("job status", "submitted"),
        "complete": w.pgettext("job status", "complete"),
        "failed": w.pgettext("job status", "failed"),
        "refunded": w.pgettext("job status", "refunded"),
    }
    return names.get(str(status), str(status))


def export_summary(w: Words, rows: int, left_out: int) -> str:
    text = w.ngettext("{n} job this period.", "{n} jobs this period.", rows)
    if left_out:
        text = w.join(
            text,
            w.ngettext(
                "The file holds the first {kept} of them; {n} more did not fit Discord's upload limit.",
                "The file holds the first {kept} of them; {n} more did not fit Discord's upload limit.",
                left_out,
                kept=w.number(rows - left_out),
            ),
        )
    return text


def _kept(w: Words, failed: Failure) -> str:
    if failed.kept <= 0:
        return w.gettext("No credits were kept.")
    return w.gettext("Magic Hour kept {credits} for it.", credits=credits(w, failed.kept))


def failure(w: Words, error: BaseException) -> str:
    """Plain words for what happened and what to do; details that only the owner can act on stay in the log."""
    return failure_text(w, classify(error))


def failure_text(w: Words, failed: Failure) -> str:
    """One sentence per kind of failure (`bot.jobs.outcomes`): the decision is made there, the words here."""
    match failed.kind:
        case FailureKind.LIMIT:
            assert failed.limit is not None
            return limit_exceeded(w, failed.limit)
        case FailureKind.MEMBER_BUSY:
            return w.gettext("⏳ You already have a background removal running. Wait for it to finish, then try again.")
        case FailureKind.SHUTTING_DOWN:
            return w.gettext(
                "🔁 The bot is restarting and isn't taking new jobs. Try again in a minute; nothing was charged."
            )
        case FailureKind.CANCELLED:
            return w.gettext("Cancelled. Nothing was charged.")
        case FailureKind.STILL_RUNNING:
            return slow(w)
        case FailureKind.CANCELED_AT_MAGIC_HOUR:
            return w.gettext("❌ The job was canceled at Magic Hour. {kept}", kept=_kept(w, failed))
        case FailureKind.FAILED_AT_MAGIC_HOUR:
            return w.gettext(
                "❌ Magic Hour couldn't process this image: {reason}. {kept}",
                reason=failed.message,
                kept=_kept(w, failed),
            )
        case FailureKind.INPUT_UNREACHABLE:
            return w.gettext(
                "❌ Magic Hour couldn't fetch the image. If it came from a link, check that the link is public and "
                "still works. {kept}",
                kept=_kept(w, failed),
            )
        case FailureKind.REJECTED:
            return w.gettext(
                "❌ Magic Hour rejected the image: {reason}. Try another image; nothing was charged.",
                reason=failed.message,
            )
        case FailureKind.OUT_OF_CREDITS:
            return w.gettext(
                "💳 The bot's Magic Hour account is out of credits. Ask the bot owner to top it up; nothing was "
                "charged."
            )
        case FailureKind.MISCONFIGURED:
            return w.gettext(
                "🔧 The bot is misconfigured and can't use Magic Hour right now. Please ask the bot owner to check it."
            )
        case FailureKind.OUTCOME_UNKNOWN:
            return w.gettext(
                "⚠️ Magic Hour didn't answer in time, so the bot can't tell whether your job started. Its credits "
                "stay reserved until that's known; please don't resend straight away."
            )
        case FailureKind.BUSY:
            return w.gettext("🕐 Magic Hour is busy right now. Please try again in a few minutes; nothing was charged.")
        case FailureKind.REFUSED:
            return w.gettext(
                "❌ Magic Hour refused the job (status {status}). Nothing was charged.", status=failed.status
            )
        case FailureKind.UNEXPECTED if failed.charge is Charge.HELD:
            return w.gettext(
                "❌ Something went wrong on the bot's side after your image was sent to Magic Hour. Its credits stay "
                "reserved until the bot owner checks it."
            )
    return w.gettext("❌ Something went wrong. Please try again later.")


# -- the command tree's errors, and the buttons -------------------------------------------------------------------


def missing_permission(w: Words, permissions: Sequence[str]) -> str:
    needed = ", ".join(permission_name(w, name) for name in permissions)
    return w.gettext("🔒 You need the **{permission}** permission to use this command.", permission=needed)


def permission_name(w: Words, name: str) -> str:
    known = {
        "manage_guild": w.pgettext("permission", "Manage Server"),
        "administrator": w.pgettext("permission", "Administrator"),
        "create_expressions": w.pgettext("permission", "Create Expressions"),
        "manage_expressions": w.pgettext("permission", "Manage Expressions"),
    }
    return known.get(name, name.replace("_", " ").replace("guild", "server").title())


def only_in_servers(w: Words) -> str:
    return w.gettext("This command only works in a server.")


def not_here(w: Words) -> str:
    return w.gettext("🔒 You can't use this command here.")


def bad_option(w: Words, detail: str) -> str:
    return w.gettext("❌ That option's value isn't valid here: {detail}", detail=detail)


def went_wrong(w: Words, reference: str) -> str:
    return w.gettext("😵 Sorry, something went wrong on our side. Error reference: `{reference}`.", reference=reference)


def cancel_label(w: Words) -> str:
    return w.pgettext("button", "Cancel")


def release_label(w: Words) -> str:
    return w.pgettext("button", "Release")


def keep_label(w: Words) -> str:
    return w.pgettext("button", "Keep")


def not_your_job(w: Words) -> str:
    return w.gettext("Only the member who started this job can cancel it.")


def already_started(w: Words) -> str:
    return w.gettext("This job has already started and can't be cancelled.")


def not_your_question(w: Words) -> str:
    return w.gettext("Only the admin who asked can answer this.")


# -- results made for Discord: the command's options, and the Add as emoji / Add as sticker buttons ---------------


def option_refused(w: Words, problem: Message) -> str:
    """A `color` or `format` the bot can't use; `problem` is the parser's own (`BadColor`, `BadFormat`)."""
    return w.gettext("❌ {problem} Nothing was charged.", problem=w.say(problem))


def option_with_background(w: Words, option: Literal["color", "trim"]) -> str:
    """`color` or `trim` together with `background`: the background image already fills the result."""
    if option == "color":
        return w.gettext(
            "❌ Choose either `color` or `background`: both set what goes behind the subject. Nothing was charged."
        )
    return w.gettext(
        "❌ `trim` can't be used with `background`: the background fills the whole picture, so there is no empty "
        "space to trim. Nothing was charged."
    )


def add_as_label(w: Words, kind: Expression) -> str:
    return w.pgettext("button", "Add as emoji") if kind == "emoji" else w.pgettext("button", "Add as sticker")


def expression_created(w: Words, kind: Expression, name: str, shown: str | None = None) -> str:
    """`shown` is the emoji's own markup (`<:cat:123>`), so the member sees it in the answer."""
    if kind == "emoji":
        if shown:
            return w.gettext(
                "✅ Added the emoji {emoji} as {name}. Everyone here can use it now.",
                emoji=shown,
                name=code(f":{name}:"),
            )
        return w.gettext("✅ Added the emoji {name}. Everyone here can use it now.", name=code(f":{name}:"))
    return w.gettext("✅ Added the sticker {name} to this server.", name=code(name))


def expression_member_lacks_permission(w: Words, kind: Expression) -> str:
    if kind == "emoji":
        return w.gettext(
            "🔒 Adding an emoji needs the Create Expressions or Manage Expressions permission, which you don't have "
            "here. Nothing was added."
        )
    return w.gettext(
        "🔒 Adding a sticker needs the Create Expressions or Manage Expressions permission, which you don't have "
        "here. Nothing was added."
    )


def expression_bot_lacks_permission(w: Words, kind: Expression) -> str:
    if kind == "emoji":
        return w.gettext(
            "🔒 I can't add an emoji: I need the Create Expressions permission in this server. A server admin can "
            "give it to my role. Nothing was added."
        )
    return w.gettext(
        "🔒 I can't add a sticker: I need the Create Expressions permission in this server. A server admin can give "
        "it to my role. Nothing was added."
    )


def expression_no_slots(w: Words, kind: Expression) -> str:
    if kind == "emoji":
        return w.gettext("📦 This server has no free emoji slots. Remove one (or boost the server) and try again.")
    return w.gettext("📦 This server has no free sticker slots. Remove one (or boost the server) and try again.")


def expression_not_made(w: Words, kind: Expression, problem: ImageProblem) -> str:
    """Why no emoji or sticker could be made from the result (`make_emoji`/`make_sticker`, or Discord's size check)."""
    emoji = kind == "emoji"
    match problem:
        case ImageProblem.TOO_MANY_BYTES if emoji:
            return w.gettext("❌ The image could not be made small enough for an emoji (256 KiB). Nothing was added.")
        case ImageProblem.TOO_MANY_BYTES:
            return w.gettext("❌ The image could not be made small enough for a sticker (512 KiB). Nothing was added.")
        case ImageProblem.NOTHING_VISIBLE if emoji:
            return w.gettext("❌ The image is fully transparent: there is nothing to make an emoji of.")
        case ImageProblem.NOTHING_VISIBLE:
            return w.gettext("❌ The image is fully transparent: there is nothing to make a sticker of.")
        case ImageProblem.TOO_LARGE if emoji:
            return w.gettext("❌ The image is too large to turn into an emoji here. Nothing was added.")
        case ImageProblem.TOO_LARGE:
            return w.gettext("❌ The image is too large to turn into a sticker here. Nothing was added.")
    if emoji:
        return w.gettext("❌ The image could not be read, so no emoji was made.")
    return w.gettext("❌ The image could not be read, so no sticker was made.")


def expression_no_image(w: Words) -> str:
    return w.gettext("❌ This message has no image to add.")


def expression_fetch_failed(w: Words) -> str:
    return w.gettext("❌ I couldn't fetch the image from Discord. Try again in a moment; nothing was added.")


def expression_only_in_servers(w: Words) -> str:
    return w.gettext("Emoji and stickers can only be added in a server that added the bot.")


def expression_refused(w: Words, kind: Expression) -> str:
    if kind == "emoji":
        return w.gettext("❌ Discord refused to add an emoji. Try again later; nothing was added.")
    return w.gettext("❌ Discord refused to add a sticker. Try again later; nothing was added.")


# -- role limits and the usage chart ---------------------------------------------------------------------------


def role(role_id: int) -> str:
    """A role mention; the bot sends no pings (its allowed mentions are none), so it only names the role."""
    return f"<@&{role_id}>"


def role_limit_exceeded(w: Words, error: LimitExceeded) -> str:
    """A member stopped by the cap one of their roles gives: the role, the cap, and when it resets."""
    assert error.role_id is not None
    values = {"role": role(error.role_id), "cap": credits(w, error.limit), "period": period_words(w, error.period)}
    if error.images > 1:
        text = w.gettext(
            "🚫 This request of {images} images needs {cost}, but your role {role}'s cap of {cap} leaves you only "
            "{left} {period}. Nothing was charged; try fewer images.",
            images=w.number(error.images),
            cost=credits(w, error.cost),
            left=w.number(max(0, error.limit - error.used)),
            **values,
        )
    else:
        text = w.ngettext(
            "🚫 You can't start another background removal: you have used {n} credit of your role {role}'s cap of "
            "{cap} {period}, and each one costs {cost}.",
            "🚫 You can't start another background removal: you have used {n} credits of your role {role}'s cap of "
            "{cap} {period}, and each one costs {cost}.",
            error.used,
            cost=w.number(error.cost),
            **values,
        )
    if error.resets_at is not None:
        return w.join(text, resets(w, error.resets_at))
    return w.join(text, w.gettext("A server admin can change it with `/credits set-role-limit`."))


def own_usage_line(w: Words, usage: Usage) -> str:
    """The member's own spend against their cap, and the role that gives it when a role does."""
    used = credits(w, usage.member_used or 0)
    if usage.member_cap is None:
        return w.gettext("You have used {used}.", used=used)
    if usage.member_cap_role_id is not None:
        return w.gettext(
            "You have used {used} of your {cap}-credit cap, from your role {role}.",
            used=used,
            cap=w.number(usage.member_cap),
            role=role(usage.member_cap_role_id),
        )
    return w.gettext("You have used {used} of your {cap}-credit limit.", used=used, cap=w.number(usage.member_cap))


def role_limits_line(w: Words, limits: Sequence[RoleLimit], period: Period) -> str:
    """The server's role limits, largest first, and the rule that picks a member's cap among them."""
    shown = " · ".join(f"{role(limit.role_id)} {w.number(limit.credits)}" for limit in limits[:ROLE_LIMITS_SHOWN])
    extra = len(limits) - ROLE_LIMITS_SHOWN
    if extra > 0:
        shown = w.ngettext("{names} and {n} more", "{names} and {n} more", extra, names=shown)
    return w.gettext(
        "**Role limits** (credits per member {period}; a member's largest replaces the member limit): {limits}.",
        period=per_period(w, period),
        limits=shown,
    )


def role_limit_set(w: Words, role_id: int, amount: int, period: Period) -> str:
    return w.gettext(
        "✅ Members with {role} may now use up to {credits} each, {period}. For them it replaces the member limit; a "
        "member with several limited roles gets the largest.",
        role=role(role_id),
        credits=credits(w, amount),
        period=per_period(w, period),
    )


def role_limit_removed(w: Words, role_id: int) -> str:
    return w.gettext("✅ {role} has no limit of its own now.", role=role(role_id))


def everyone_role_refused(w: Words) -> str:
    return w.gettext("❌ Every member has @everyone: to limit every member, use `/credits set-member-limit`.")


def chart_caption(w: Words, legend: Sequence[tuple[str, int | None, int]], *, period: Period, limit: int | None) -> str:
    """What the attached chart shows, in one sentence, then which colour is whom (the image holds no names)."""
    when = _chart_window_words(w, period)
    if limit is not None:
        text = w.gettext(
            "📊 The chart shows credits per day {when}, stacked by member, with their running total against the "
            "server's limit of {limit} (dashed).",
            when=when,
            limit=credits(w, limit),
        )
    else:
        text = w.gettext(
            "📊 The chart shows credits per day {when}, stacked by member, with their running total.", when=when
        )
    others = w.pgettext("chart legend", "others")
    entries = [f"{square} {others if who is None else f'<@{who}>'} {w.number(n)}" for square, who, n in legend]
    return text + "\n" + " · ".join(entries)


def _chart_window_words(w: Words, period: Period) -> str:
    """The chart covers the current week or month, else (a daily or one-off limit) the last 30 days."""
    chosen = Period(period)
    if chosen in (Period.WEEK, Period.MONTH):
        return period_words(w, chosen)
    return w.gettext("over the last 30 days")


def no_chart(w: Words, period: Period) -> str:
    return w.gettext("📊 No credits were spent {when}, so there is no chart.", when=_chart_window_words(w, period))


def chart_failed(w: Words) -> str:
    return w.gettext("📊 The chart could not be drawn this time; the figures above are complete.")
