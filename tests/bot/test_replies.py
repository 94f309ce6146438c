"""What a member reads when a job ends without a result: one row per error class that can reach `failure()`.

Each message must say what happened in plain words, say "nothing was charged" exactly when nothing was,
never echo a key or a signed URL, and differ from the generic fallback unless it is meant to be the fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from bot import replies
from bot.i18n import ENGLISH
from bot.imaging import ImageProblem
from bot.jobs import JobCancelled, MemberBusy, ShuttingDown, StillRunning
from bot.ledger import LimitExceeded, Period
from bot.magic_hour import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ImageProject,
    InsufficientCreditsError,
    InternalServerError,
    JobFailedError,
    JobMayExistError,
    NotFoundError,
    PermissionDeniedError,
    ProjectError,
    ProjectStatus,
    RateLimitError,
    UnprocessableEntityError,
)

API_KEY = "mhk_live_replies_secret"
SIGNED = "https://cdn.discordapp.com/attachments/1/2/cat.png?ex=67&is=66&hm=0123abcdsignature"
CREATE = {"method": "POST", "path": "/v1/image-background-remover"}
# What a body could carry that a member must never see: the key, and a signed input URL.
LEAKY_BODY = {"message": "x", "debug": {"authorization": f"Bearer {API_KEY}", "input": SIGNED}}
RESETS = datetime(2025, 4, 1, tzinfo=UTC)
RESETS_MARKUP = f"<t:{int(RESETS.timestamp())}:R>"
NOTHING_CHARGED = "nothing was charged"
FALLBACK = replies.failure(ENGLISH, Exception("anything unexpected"))


def project(status: ProjectStatus, code: str | None, message: str | None, credits: int = 0) -> ImageProject:
    return ImageProject(
        id="cm000001abcd",
        name="discord-1",
        status=status,
        image_count=0,
        type="BACKGROUND_REMOVER",
        created_at=datetime(2025, 3, 15, 12, 0, tzinfo=UTC),
        enabled=True,
        credits_charged=credits,
        downloads=[],
        error=ProjectError(code, message) if code and message else None,
    )


@dataclass(frozen=True)
class Case:
    id: str
    error: BaseException
    kind: str  # rows of one kind say the same thing; different kinds must not
    says: tuple[str, ...]  # words the member must read (case-insensitive)
    charged_nothing: bool | None  # True: must say nothing was charged; False: must not; None: not its business


CASES = [
    Case(
        "limit-guild-resets",
        LimitExceeded("guild", 98, 100, Period.MONTH, RESETS, 5),
        "limit",
        ("this server", "98 of 100 credits", "this month", "costs 5", f"resets {RESETS_MARKUP}"),
        None,
    ),
    Case(
        "limit-guild-never-resets",
        LimitExceeded("guild", 100, 100, Period.NONE, None, 5),
        "limit",
        ("this server", "100 of 100 credits", "in total", "/credits set-limit"),
        None,
    ),
    Case(
        "limit-member-resets",
        LimitExceeded("member", 20, 20, Period.DAY, RESETS, 5),
        "limit",
        ("you can't", "20 of 20 credits", "today", f"resets {RESETS_MARKUP}"),
        None,
    ),
    Case(
        "limit-member-never-resets",
        LimitExceeded("member", 10, 12, Period.NONE, None, 5),
        "limit",
        ("you can't", "10 of 12 credits", "in total", "/credits set-member-limit"),
        None,
    ),
    Case("member-busy", MemberBusy(1, 1), "busy-member", ("already have", "running", "try again"), None),
    Case("shutting-down", ShuttingDown(), "restarting", ("restarting", "try again"), True),
    Case("cancelled", JobCancelled(), "cancelled", ("cancelled",), True),
    Case("still-running", StillRunning("cm000001abcd"), "slow", ("longer than usual", "post the result"), None),
    Case(
        "job-canceled",
        JobFailedError(project(ProjectStatus.CANCELED, None, None)),
        "job-canceled",
        ("canceled at magic hour", "no credits were kept"),
        None,
    ),
    Case(
        "job-error",
        JobFailedError(project(ProjectStatus.ERROR, "render_failed", "The image could not be processed")),
        "job-error",
        ("couldn't process", "the image could not be processed", "no credits were kept"),
        None,
    ),
    Case(
        "400",
        BadRequestError(400, "Invalid image_file_path", LEAKY_BODY, **CREATE),
        "rejected",
        ("rejected the image", "invalid image_file_path", "try another image"),
        True,
    ),
    Case(
        "422",
        UnprocessableEntityError(422, "Unable to create image", LEAKY_BODY, **CREATE),
        "rejected",
        ("rejected the image", "unable to create image"),
        True,
    ),
    Case(
        "402",
        InsufficientCreditsError(402, "Payment required", LEAKY_BODY, **CREATE),
        "out-of-credits",
        ("out of credits", "bot owner"),
        True,
    ),
    Case(
        "401",
        AuthenticationError(401, "Unauthorized", LEAKY_BODY, **CREATE),
        "misconfigured",
        ("misconfigured", "bot owner"),
        None,
    ),
    Case(
        "403",
        PermissionDeniedError(403, "Your plan does not include this feature", LEAKY_BODY, **CREATE),
        "misconfigured",
        ("misconfigured", "bot owner"),
        None,
    ),
    Case(
        "404",
        NotFoundError(404, "Not Found", LEAKY_BODY, method="GET", path="/v1/image-projects/cm1", project_id="cm1"),
        "misconfigured",
        ("misconfigured", "bot owner"),
        None,
    ),
    Case(
        "429",
        RateLimitError(429, "Too many requests", LEAKY_BODY, **CREATE, retry_after=30.0),
        "mh-busy",
        ("busy", "try again"),
        True,
    ),
    Case("502", InternalServerError(502, "Bad gateway", LEAKY_BODY, **CREATE), "mh-busy", ("busy",), True),
    Case(
        "503",
        InternalServerError(503, "Service unavailable", LEAKY_BODY, **CREATE, retry_after=5.0),
        "mh-busy",
        ("busy",),
        True,
    ),
    Case(
        "connection-refused",
        APIConnectionError("Could not connect to api.magichour.ai (ClientConnectorError).", request_sent=False),
        "mh-busy",
        ("busy",),
        True,
    ),
    Case(
        "connect-timeout",
        APITimeoutError("Could not connect to api.magichour.ai (ConnectionTimeoutError).", request_sent=False),
        "mh-busy",
        ("busy",),
        True,
    ),
    Case(
        "500",
        InternalServerError(500, "Internal server error", LEAKY_BODY, **CREATE),
        "may-exist",
        ("can't tell whether your job started", "stay reserved", "don't resend"),
        False,
    ),
    Case(
        "504",
        InternalServerError(504, "Gateway timeout", LEAKY_BODY, **CREATE),
        "may-exist",
        ("can't tell whether your job started", "stay reserved"),
        False,
    ),
    Case(
        "create-answer-lost",
        JobMayExistError("timed out"),
        "may-exist",
        ("can't tell whether your job started", "stay reserved"),
        False,
    ),
    # The intended fallback: nothing the member can act on; the details are for the owner's log.
    Case(
        "unexpected",
        RuntimeError(f"postgresql://bot:hunter2@db/bot refused; key {API_KEY}; input {SIGNED}"),
        "fallback",
        ("something went wrong",),
        False,
    ),
    Case(
        "unreadable-create-answer",
        APIResponseValidationError("Unexpected create answer from Magic Hour."),
        "may-exist",
        ("can't tell whether your job started", "stay reserved"),
        False,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_each_failure_says_what_happened(case: Case) -> None:
    text = replies.failure(ENGLISH, case.error)
    lowered = text.lower()

    for words in case.says:
        assert words.lower() in lowered, f"{case.id}: {words!r} missing from {text!r}"
    if case.charged_nothing is True:
        assert NOTHING_CHARGED in lowered
    elif case.charged_nothing is False:
        assert NOTHING_CHARGED not in lowered  # credits may be held or spent: never promise otherwise
    assert (text == FALLBACK) is (case.kind == "fallback")


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_no_failure_message_leaks_a_secret_or_a_signed_url(case: Case) -> None:
    text = replies.failure(ENGLISH, case.error)

    for secret in (API_KEY, "Bearer", "hunter2", "hm=", "ex=", "postgresql://", "http://", "https://"):
        assert secret not in text, f"{case.id}: {secret!r} in {text!r}"


def test_different_situations_get_different_words() -> None:
    by_kind: dict[str, set[str]] = {}
    for case in CASES:
        by_kind.setdefault(case.kind, set()).add(replies.failure(ENGLISH, case.error))
    kinds = sorted(by_kind)
    for index, kind in enumerate(kinds):
        for other in kinds[index + 1 :]:
            assert not by_kind[kind] & by_kind[other], f"{kind} and {other} read the same"
    # Rows of one kind that carry no per-error details read exactly alike.
    for kind in ("busy-member", "restarting", "cancelled", "slow", "misconfigured", "mh-busy", "may-exist"):
        assert len(by_kind[kind]) == 1, f"{kind} is worded inconsistently: {by_kind[kind]}"


@pytest.mark.parametrize("status", [405, 409, 413])
def test_an_unnamed_magic_hour_refusal_still_says_nothing_was_charged(status: int) -> None:
    text = replies.failure(ENGLISH, APIStatusError(status, "Request refused", None, **CREATE))

    assert text != FALLBACK
    assert NOTHING_CHARGED in text.lower()


@pytest.mark.parametrize(
    "status, code, message",
    [(ProjectStatus.CANCELED, None, None), (ProjectStatus.ERROR, "render_failed", "Rendering failed")],
)
def test_a_failed_job_that_kept_credits_does_not_claim_a_refund(
    status: ProjectStatus, code: str | None, message: str | None
) -> None:
    text = replies.failure(ENGLISH, JobFailedError(project(status, code, message, credits=5)))

    assert "no credits were kept" not in text.lower()


# -- the Add as emoji / Add as sticker answers ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["emoji", "sticker"])
def test_each_reason_no_expression_was_added_reads_differently_and_names_what(kind: replies.Expression) -> None:
    texts = [
        replies.expression_member_lacks_permission(ENGLISH, kind),
        replies.expression_bot_lacks_permission(ENGLISH, kind),
        replies.expression_no_slots(ENGLISH, kind),
        replies.expression_refused(ENGLISH, kind),
        *(replies.expression_not_made(ENGLISH, kind, problem) for problem in ImageProblem),
    ]
    assert len(set(texts)) == len(texts), texts
    assert all(kind in text for text in texts), texts


def test_the_size_answer_names_discords_limit_of_each_kind() -> None:
    assert "256 KiB" in replies.expression_not_made(ENGLISH, "emoji", ImageProblem.TOO_MANY_BYTES)
    assert "512 KiB" in replies.expression_not_made(ENGLISH, "sticker", ImageProblem.TOO_MANY_BYTES)


def test_a_created_emoji_is_shown_and_named_in_one_code_span() -> None:
    text = replies.expression_created(ENGLISH, "emoji", "my_cat", "<:my_cat:123>")
    assert "<:my_cat:123>" in text and "`:my_cat:`" in text
