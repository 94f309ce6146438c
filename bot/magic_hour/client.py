"""AsyncClient and its resources, shaped like the official SDK: client.v1.image_background_remover etc."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import aiohttp

from . import errors
from .download import check_storage_url, stream_to_file
from .models import CreateResult, DownloadedFile, GenerateResult, ImageProject, ProjectStatus, UploadUrl
from .polling import PollPolicy
from .transport import DEFAULT_BASE_URL, RetryMode, RetryPolicy, Sleep, Transport, read_json

logger = logging.getLogger("bot.magic_hour")

StatusCallback = Callable[[ImageProject], Awaitable[Any] | Any]
FileSource = str | os.PathLike[str] | BinaryIO

ASSET_KEYS = ("image_file_path", "background_image_file_path")
# Upload types and extensions the upload-URLs API accepts (spec), most specific type first.
UPLOAD_EXTENSIONS: dict[str, frozenset[str]] = {
    "image": frozenset(["png", "jpg", "jpeg", "jfif", "heic", "heif", "webp", "avif", "jp2", "tiff", "tif", "bmp"]),
    "video": frozenset(["mp4", "m4v", "mov", "webm"]),
    "audio": frozenset(["mp3", "wav", "aac", "flac", "webm", "weba", "m4a", "opus", "ogg", "oga", "aiff", "amr"]),
}


def is_remote_asset(value: object) -> bool:
    """URLs and already-uploaded "api-assets/..." paths go to the API as they are; anything else is local."""
    return isinstance(value, str) and value.lower().startswith(("http://", "https://", "api-assets/"))


def upload_kind(filename: str) -> tuple[str, str]:
    """(type, extension) for the upload-URLs API, from a file name."""
    extension = Path(filename).suffix.lower().lstrip(".")
    for kind, extensions in UPLOAD_EXTENSIONS.items():
        if extension in extensions:
            return kind, extension
    raise ValueError(f"Magic Hour cannot take a {extension or 'extensionless'} file ({Path(filename).name}).")


class _Resource:
    """Marks resource namespaces so the sync wrapper knows to wrap them."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client


class UploadUrls(_Resource):
    async def create(self, *, items: Sequence[Mapping[str, str]]) -> list[UploadUrl]:
        """POST /v1/files/upload-urls; answers follow the order of `items`. Retry-safe: no charge."""
        body = {"items": [{"type": item["type"], "extension": item["extension"]} for item in items]}
        data = await self._client._transport.request("POST", "/v1/files/upload-urls", read_json, json=body)
        try:
            return [UploadUrl.from_json(item) for item in data["items"]]
        except (KeyError, TypeError):
            raise errors.APIResponseValidationError("Unexpected upload URLs answer from Magic Hour.") from None


class Files(_Resource):
    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client)
        self.upload_urls = UploadUrls(client)

    async def upload_file(self, file: FileSource) -> str:
        """Upload a local file (path or binary file object with a .name); returns its Magic Hour file_path.

        URLs and "api-assets/..." paths are returned untouched, as in the official SDK.
        """
        if is_remote_asset(file):
            return str(file)
        [file_path] = await self.upload_many([file])
        return file_path

    async def upload_many(self, files: Sequence[FileSource]) -> list[str]:
        """Upload several local files with one upload-URLs request, then one PUT each."""
        loaded: list[tuple[str, bytes]] = [await _load(f) for f in files]
        kinds = [upload_kind(name) for name, _ in loaded]
        urls = await self.upload_urls.create(items=[{"type": k, "extension": e} for k, e in kinds])
        if len(urls) != len(loaded):
            raise errors.APIResponseValidationError("Magic Hour returned the wrong number of upload URLs.")
        for upload, (_, content) in zip(urls, loaded, strict=True):
            check_storage_url(upload.upload_url)
            await self._client._transport.request(
                "PUT", upload.upload_url, _drain, data=content, authenticated=False, mode=RetryMode.IDEMPOTENT
            )
        return [upload.file_path for upload in urls]


async def _load(file: FileSource) -> tuple[str, bytes]:
    if isinstance(file, str | os.PathLike):
        path = Path(file)
        return path.name, await asyncio.to_thread(path.read_bytes)
    name = getattr(file, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError("A file object to upload needs a .name with the file extension.")
    return name, await asyncio.to_thread(file.read)


async def _drain(response: aiohttp.ClientResponse) -> None:
    await response.read()


class ImageProjects(_Resource):
    async def get(self, *, id: str) -> ImageProject:
        """GET /v1/image-projects/{id}."""
        data = await self._client._transport.request(
            "GET", f"/v1/image-projects/{quote(id, safe='')}", read_json, project_id=id
        )
        return ImageProject.from_json(data)

    async def delete(self, *, id: str) -> None:
        """DELETE /v1/image-projects/{id}: removes the outputs for good."""
        await self._client._transport.request(
            "DELETE", f"/v1/image-projects/{quote(id, safe='')}", _drain, project_id=id
        )

    async def wait(
        self,
        *,
        id: str,
        on_status: StatusCallback | None = None,
        deadline: float | None = None,
        poll: PollPolicy | None = None,
    ) -> ImageProject:
        """Poll on the PollPolicy schedule (the client's, or `poll`) until the project is final.

        Returns the complete project; raises JobFailedError on error/canceled and PollTimeoutError past
        the deadline (the job may still finish: keep the id). A poll that fails transiently (after the
        transport's own retries) is skipped, not fatal; 4xx errors such as NotFoundError propagate.
        `on_status` (sync or async) is called once per status change, including the first status seen.
        """
        client = self._client
        policy = poll or client.poll
        limit = policy.deadline if deadline is None else deadline
        start = client._clock()
        last_status: ProjectStatus | str | None = None
        while True:
            elapsed = client._clock() - start
            remaining = limit - elapsed
            if remaining <= 0:
                raise errors.PollTimeoutError(id, str(last_status) if last_status else None, limit)
            await client._sleep(min(policy.next_delay(elapsed), remaining))
            try:
                project = await self.get(id=id)
            except (errors.APIConnectionError, errors.RateLimitError, errors.InternalServerError) as exc:
                logger.warning("Polling project %s failed (%s); still waiting", id, type(exc).__name__)
                continue
            if project.status != last_status:
                last_status = project.status
                logger.debug("Project %s is %s", id, project.status)
                if on_status is not None:
                    result = on_status(project)
                    if inspect.isawaitable(result):
                        await result
            if project.status == ProjectStatus.COMPLETE:
                return project
            if project.status in (ProjectStatus.ERROR, ProjectStatus.CANCELED):
                raise errors.JobFailedError(project)

    async def download(
        self,
        project: ImageProject,
        index: int = 0,
        directory: str | os.PathLike[str] | None = None,
        max_bytes: int | None = None,
    ) -> DownloadedFile:
        """Stream downloads[index] into a spooled buffer (directory None) or a new unique file in `directory`.

        An expired URL (403/410) is refreshed once by re-reading the project.
        """
        limit = self._client.max_download_bytes if max_bytes is None else max_bytes
        folder = Path(directory) if directory is not None else None
        current, refreshed = project, False
        while True:
            if not 0 <= index < len(current.downloads):
                raise errors.DownloadError(
                    f"Project {project.id} has no download #{index} (status {current.status}).",
                    project_id=project.id,
                )
            item = current.downloads[index]
            try:
                return await stream_to_file(
                    self._client._transport,
                    item.url,
                    project_id=project.id,
                    expires_at=item.expires_at,
                    directory=folder,
                    max_bytes=limit,
                )
            except errors.APIStatusError as exc:
                if exc.status in (403, 410) and not refreshed:
                    logger.info(
                        "Download URL of project %s refused (%s); fetching a fresh one",
                        project.id,
                        exc.status,
                    )
                    refreshed = True
                    current = await self.get(id=project.id)
                    continue
                raise errors.DownloadError(
                    f"Downloading the output of project {project.id} failed: storage answered {exc.status}.",
                    status=exc.status,
                    project_id=project.id,
                ) from None
            except errors.APIConnectionError as exc:
                raise errors.DownloadError(
                    f"Downloading the output of project {project.id} failed: {exc.message}",
                    project_id=project.id,
                ) from None


class ImageBackgroundRemover(_Resource):
    async def create(self, *, assets: Mapping[str, str], name: str | None = None) -> CreateResult:
        """POST /v1/image-background-remover (charges credits). Never re-sent once it may have arrived."""
        unknown = set(assets) - set(ASSET_KEYS)
        if unknown or "image_file_path" not in assets:
            raise ValueError(f"assets needs image_file_path and may have only {ASSET_KEYS}; got {sorted(assets)}.")
        body: dict[str, Any] = {"assets": {key: str(value) for key, value in assets.items()}}
        if name is not None:
            body["name"] = name
        data = await self._client._transport.request(
            "POST", "/v1/image-background-remover", read_json, json=body, mode=RetryMode.CREATE
        )
        result = CreateResult.from_json(data)
        logger.info("Created Magic Hour project %s (%s credits)", result.id, result.credits_charged)
        return result

    async def generate(
        self,
        *,
        assets: Mapping[str, FileSource],
        name: str | None = None,
        wait_for_completion: bool = True,
        download_outputs: bool = True,
        download_directory: str | os.PathLike[str] | None = None,
        on_status: StatusCallback | None = None,
    ) -> GenerateResult:
        """Upload local inputs (both of them), create, wait, download: the SDK's workflow, bounded."""
        resolved: dict[str, Any] = dict(assets)  # the caller's dict is never modified
        local = [key for key in ASSET_KEYS if key in resolved and not is_remote_asset(resolved[key])]
        if local:
            uploaded = await self._client.v1.files.upload_many([resolved[key] for key in local])
            resolved.update(zip(local, uploaded, strict=True))
        created = await self.create(assets=resolved, name=name)
        projects = self._client.v1.image_projects
        if not wait_for_completion:
            return GenerateResult(project=await projects.get(id=created.id))
        project = await projects.wait(id=created.id, on_status=on_status)
        paths: list[Path] = []
        if download_outputs:
            directory = Path(download_directory) if download_directory is not None else Path.cwd()
            await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
            for index in range(len(project.downloads)):
                downloaded = await projects.download(project, index=index, directory=directory)
                downloaded.close()
                if downloaded.path is not None:
                    paths.append(downloaded.path)
        return GenerateResult(project=project, downloaded_paths=paths)


class V1(_Resource):
    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client)
        self.image_background_remover = ImageBackgroundRemover(client)
        self.image_projects = ImageProjects(client)
        self.files = Files(client)


class AsyncClient:
    """Async Magic Hour client: explicit timeouts, charge-safe retries, bounded polling, capped downloads."""

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        connect_timeout: float = 10.0,
        request_timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        max_download_bytes: int = 100_000_000,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        token = token if token is not None else os.environ.get("MAGIC_HOUR_API_KEY")
        if not token:
            raise ValueError("A Magic Hour API key is required (token=... or MAGIC_HOUR_API_KEY).")
        self.base_url = (base_url or os.environ.get("MAGIC_HOUR_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.poll = poll or PollPolicy()
        self.max_download_bytes = max_download_bytes
        self._sleep = sleep
        self._clock = clock
        self._transport = Transport(
            token=token,
            base_url=self.base_url,
            session=session,
            connect_timeout=connect_timeout,
            request_timeout=request_timeout,
            retry=retry or RetryPolicy(),
            sleep=sleep,
        )
        self.v1 = V1(self)

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self.base_url!r})"

    async def close(self) -> None:
        """Close the HTTP session if this client opened it; a session passed in stays open."""
        await self._transport.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
