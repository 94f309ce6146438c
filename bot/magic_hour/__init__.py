"""Async client for the Magic Hour image background remover API (knows nothing of Discord or the ledger)."""

from .client import AsyncClient
from .errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    DownloadError,
    DownloadTooLargeError,
    InsufficientCreditsError,
    InternalServerError,
    JobFailedError,
    JobMayExistError,
    MagicHourError,
    NotFoundError,
    PermissionDeniedError,
    PollTimeoutError,
    RateLimitError,
    UnprocessableEntityError,
)
from .models import (
    CreateResult,
    Download,
    DownloadedFile,
    GenerateResult,
    ImageProject,
    ProjectError,
    ProjectStatus,
    UploadUrl,
)
from .polling import PollPolicy
from .sync import Client
from .transport import RetryPolicy

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "CreateResult",
    "Download",
    "DownloadError",
    "DownloadTooLargeError",
    "DownloadedFile",
    "GenerateResult",
    "ImageProject",
    "InsufficientCreditsError",
    "InternalServerError",
    "JobFailedError",
    "JobMayExistError",
    "MagicHourError",
    "NotFoundError",
    "PermissionDeniedError",
    "PollPolicy",
    "PollTimeoutError",
    "ProjectError",
    "ProjectStatus",
    "RateLimitError",
    "RetryPolicy",
    "UnprocessableEntityError",
    "UploadUrl",
]
