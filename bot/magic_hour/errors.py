"""The error hierarchy: one class per decision a caller has to make (retry, top up, report, keep tracking).

Every error carries `.status` (HTTP status or None) and `.message`; `str(err)` is a readable sentence.
No error ever holds the API token: messages are built from the API's answer and our own words only.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any, Protocol


class ProjectFailure(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def message(self) -> str: ...


class FinishedProject(Protocol):
    """What an error needs of a project; `models.ImageProject` is one, and errors never import models."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> Any: ...
    @property
    def error(self) -> ProjectFailure | None: ...
    @property
    def credits_charged(self) -> int: ...


# Magic Hour's docs: "502: if it failed before returning a project id, no job was created"; a 503 is
# refused at the door. Every other 5xx answer to a create may come after the job was made.
NO_JOB_STATUSES = frozenset({502, 503})


class MagicHourError(Exception):
    """Base class, so callers can catch everything this client raises in one place."""

    status: int | None = None
    project_id: str | None = None

    def __init__(self, message: str, *, status: int | None = None, project_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.project_id = project_id

    def __str__(self) -> str:
        return self.message


class APIResponseValidationError(MagicHourError):
    """The API answered 2xx with a body we cannot read (not JSON, or failing the model's checks).

    A GET/DELETE/upload-URL answer like this is retried like a 5xx; a create answer like this becomes a
    JobMayExistError (the job was made and charged, we just cannot read its id).
    """


class APIStatusError(MagicHourError):
    """The API answered with an error status; subclasses name the common ones."""

    def __init__(
        self,
        status: int,
        message: str,
        body: Any = None,
        *,
        method: str | None = None,
        path: str | None = None,
        project_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, project_id=project_id)
        self.body = body
        self.method = method
        self.path = path
        self.retry_after = retry_after  # seconds the server asked us to wait (429, sometimes 503)

    def __str__(self) -> str:
        where = f" to {self.method} {self.path}" if self.method and self.path else ""
        return f"Magic Hour answered {self.status}{where}: {self.message}"


class BadRequestError(APIStatusError):
    """400: the request is malformed; fix the input, do not retry."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, wrong or revoked."""


class InsufficientCreditsError(APIStatusError):
    """402: the Magic Hour account is out of credits."""


class PermissionDeniedError(APIStatusError):
    """403: the feature is not on the account's plan (or a storage URL refused us)."""


class NotFoundError(APIStatusError):
    """404: no such project (deleted, or another account's)."""


class UnprocessableEntityError(APIStatusError):
    """422: the API understood the request but cannot process these inputs."""


class RateLimitError(APIStatusError):
    """429: too many requests; `retry_after` is the server's hint in seconds, when it gave one."""


class InternalServerError(APIStatusError):
    """5xx: Magic Hour failed or is overloaded."""


class APIConnectionError(MagicHourError):
    """The network failed; `request_sent` says whether the server may have seen the request."""

    def __init__(self, message: str = "Could not reach Magic Hour.", *, request_sent: bool) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """No answer within the configured timeout."""

    def __init__(self, message: str = "Magic Hour did not answer in time.", *, request_sent: bool) -> None:
        super().__init__(message, request_sent=request_sent)


class JobMayExistError(APIConnectionError):
    """The create request was sent but no usable answer came back: re-sending could create and charge twice.

    Raised for a timeout or a dropped connection after sending, and for a 2xx whose body cannot be read
    (then `status` is that 2xx). Callers keep the credits reserved until the job is accounted for.
    """

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(
            f"The create request reached Magic Hour but the answer was lost ({reason}). "
            "The job may exist and may have been charged; it was not re-sent.",
            request_sent=True,
        )
        self.reason = reason
        self.status = status


class JobFailedError(MagicHourError):
    """The project ended in `error` or `canceled`; `.code`/`.message` come from the project's error."""

    def __init__(self, project: FinishedProject) -> None:
        if project.error is not None:
            code, message = project.error.code, project.error.message
        else:
            code = str(project.status)
            message = "The job was canceled." if code == "canceled" else "The job failed."
        super().__init__(message, project_id=project.id)
        self.project = project
        self.code = code

    def __str__(self) -> str:
        return f"Magic Hour project {self.project_id} ended with status {self.project.status} ({self.code}): " + (
            self.message
        )


class PollTimeoutError(MagicHourError):
    """The wait deadline passed before a terminal status; the job may still finish, keep its id."""

    def __init__(self, project_id: str, last_status: str | None, deadline: float | None = None) -> None:
        after = f" after {deadline:g} s" if deadline is not None else ""
        super().__init__(
            f"Magic Hour project {project_id} was still {last_status or 'unknown'}{after}; stopped waiting.",
            project_id=project_id,
        )
        self.last_status = last_status
        self.deadline = deadline


class DownloadError(MagicHourError):
    """The output could not be downloaded (refused URL, storage error, network failure)."""


class OutputTooLargeError(DownloadError):
    """The output is bigger than the allowed size, found out before (or while) downloading it.

    `size` is the Content-Length when `size_known`, else the bytes read before stopping (a lower bound).
    `url`/`expires_at` are the output's signed link, so the caller can hand the link out instead of the
    file; the link is kept out of str(error), which goes to logs.
    """

    def __init__(
        self,
        size: int,
        limit: int,
        *,
        project_id: str | None = None,
        size_known: bool = True,
        url: str | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        seen = f"{size} bytes" if size_known else f"more than {size} bytes"
        super().__init__(
            f"The download is larger than the limit ({seen}, limit {limit} bytes).",
            project_id=project_id,
        )
        self.size = size
        self.limit = limit
        self.size_known = size_known
        self.url = url
        self.expires_at = expires_at


DownloadTooLargeError = OutputTooLargeError  # the earlier name; same class


class DownloadContentTypeError(DownloadError):
    """Storage answered 2xx with something that is not an image (an HTML error page, JSON...)."""

    def __init__(self, content_type: str | None, *, project_id: str | None = None) -> None:
        super().__init__(
            f"The download is not an image (Content-Type {content_type or 'missing'}).", project_id=project_id
        )
        self.content_type = content_type


def create_may_have_happened(error: BaseException) -> bool:
    """Could the create call that raised `error` have made (and charged) a job we hold no id for?

    The single answer to "release the reserved credits or hold them?". True holds them:
    JobMayExistError, an unreadable 2xx, a 5xx other than 502/503, a timeout or lost connection after
    the request was sent, a cancellation mid-call, and anything unrecognised. False releases them:
    4xx (429 included), 502/503, a redirect, a connection that never opened, and ValueError/TypeError
    (create() checks its arguments before sending anything). Errors a create never raises (JobFailedError,
    PollTimeoutError, DownloadError) come with a known project id, so the answer for them is False too.
    """
    match error:
        case JobMayExistError() | APIResponseValidationError():
            return True
        case APIConnectionError():
            return error.request_sent
        case APIStatusError():
            return error.status >= 500 and error.status not in NO_JOB_STATUSES
        case MagicHourError() | ValueError() | TypeError():
            return False
        case asyncio.CancelledError():
            return True
    return True


_FETCH_STEMS = ("fetch", "download", "retriev", "access", "inaccessib", "reach", "unreachab")
_INPUT_WORDS = frozenset(
    {"input", "inputs", "image", "images", "file", "files", "asset", "assets", "url", "urls", "link", "links"}
    | {"media", "source", "photo", "picture", "background"}
)
_NOT_INPUT_WORDS = frozenset({"output", "outputs", "result", "results", "model", "models", "weights"})
_NEAR = 5  # words between the verb and the noun: "could not fetch the input image", "the URL could not be reached"


def _says_input_fetch_failed(text: str) -> bool:
    words = re.findall(r"[a-z0-9]+", text.lower())
    if _NOT_INPUT_WORDS.intersection(words):
        return False
    verbs = [i for i, word in enumerate(words) if word.startswith(_FETCH_STEMS)]
    nouns = [i for i, word in enumerate(words) if word in _INPUT_WORDS]
    return any(abs(v - n) <= _NEAR for v in verbs for n in nouns)


def is_input_fetch_failure(error: BaseException) -> bool:
    """Did Magic Hour fail because it could not fetch an input (e.g. an expired Discord CDN link)?

    Only then does a second create with a fresh link make sense. The code and the message are read
    separately, each needing a fetch verb next to an input noun, so "invalid_input" + "Image too small"
    or "Failed to download model weights" do not count. Only a failed job (JobFailedError) or a 400/422
    answer can mean this.
    """
    if isinstance(error, JobFailedError):
        texts = [error.code.replace("_", " "), error.message]
    elif isinstance(error, BadRequestError | UnprocessableEntityError):
        texts = [error.message]
    else:
        return False
    return any(_says_input_fetch_failed(text) for text in texts)
