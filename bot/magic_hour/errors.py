"""The error hierarchy: one class per decision a caller has to make (retry, top up, report, keep tracking).

Every error carries `.status` (HTTP status or None) and `.message`; `str(err)` is a readable sentence.
No error ever holds the API token: messages are built from the API's answer and our own words only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import ImageProject


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
    """The API answered 2xx with a body we cannot read: a contract change, never retried."""


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
    """The create request was sent but no answer came back: re-sending could create and charge twice."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"The create request reached Magic Hour but the answer was lost ({reason}). "
            "The job may exist and may have been charged; it was not re-sent.",
            request_sent=True,
        )
        self.reason = reason


class JobFailedError(MagicHourError):
    """The project ended in `error` or `canceled`; `.code`/`.message` come from the project's error."""

    def __init__(self, project: ImageProject) -> None:
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


class DownloadTooLargeError(DownloadError):
    """The output is bigger than the allowed size; `size` is what we saw (header or bytes read so far)."""

    def __init__(self, size: int, limit: int, *, project_id: str | None = None) -> None:
        super().__init__(
            f"The download is larger than the limit ({size} bytes seen, limit {limit} bytes).",
            project_id=project_id,
        )
        self.size = size
        self.limit = limit
