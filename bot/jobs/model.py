"""What a request is and what it yields: plain values the runner, the adapter and the tests share."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from bot.imaging import ImageProblem, ResultOptions
from bot.ledger import ImageSpec, Origin, Payer, Usage
from bot.magic_hour import DownloadedFile, ImageProject

DEFAULT_OPTIONS = ResultOptions()


@dataclass(frozen=True)
class ImageInput:
    """One image a member pointed at: the URL Magic Hour fetches, the member's file name, the job's name."""

    url: str
    filename: str | None = None
    name: str | None = None  # the job's name at Magic Hour; its suffix names the job for webhooks (see names.py)


@dataclass(frozen=True)
class Request:
    """A member's request: one interaction, one or more images, one reservation for all of them.

    `private` has no default: whoever builds a request says whether only the member may see it.
    """

    origin: Origin
    images: tuple[ImageInput, ...]
    private: bool
    background_url: str | None = None
    upload_limit: int | None = None  # the largest file the reply can carry: a bigger result is sent as a link
    payer: Payer = Payer.GUILD  # whose budget: the server that installed the bot, or the member's own install
    channel_posts: bool = True  # the bot is in the server and may post in the channel (else: the interaction only)
    options: ResultOptions = DEFAULT_OPTIONS  # what to do to each result locally (colour, trim, format)
    roles: tuple[int, ...] = ()  # the member's role ids as Discord sent them: their largest role limit is their cap

    @property
    def interaction_id(self) -> int:
        return self.origin.interaction_id

    def image(self, position: int) -> ImageJob:
        image = self.images[position]
        return ImageJob(
            self.origin, position, image, self.background_url, self.upload_limit, self.payer, self.options, self.private
        )

    def specs(self) -> list[ImageSpec]:
        """The images as the ledger records them."""
        return [ImageSpec(i.url, self.background_url, i.name, i.filename) for i in self.images]

    def log_context(self) -> str:
        return f"{self.origin.log_context()} images={len(self.images)}"


@dataclass(frozen=True)
class ImageJob:
    """One image of a request: what its Magic Hour job is made of."""

    origin: Origin
    position: int
    image: ImageInput
    background_url: str | None = None
    upload_limit: int | None = None
    payer: Payer = Payer.GUILD
    options: ResultOptions = DEFAULT_OPTIONS
    private: bool = False

    @property
    def paying_guild(self) -> int | None:
        return self.origin.guild_id if self.payer is Payer.GUILD else None

    @property
    def key(self) -> tuple[int, int]:
        """The job's key in the ledger and in the runner: (interaction id, position)."""
        return (self.origin.interaction_id, self.position)

    def with_inputs(self, image_url: str, background_url: str | None) -> ImageJob:
        """The same job with fresh input URLs (Magic Hour could not fetch the first ones)."""
        return replace(self, image=replace(self.image, url=image_url), background_url=background_url)

    def log_context(self, project_id: str | None = None) -> str:
        ids = self.origin.log_context()
        if self.position:
            ids += f" image={self.position}"
        return f"{ids} project={project_id}" if project_id else ids


@dataclass
class JobResult:
    project: ImageProject
    file: DownloadedFile | None  # None when the output could not be fetched: show the link instead
    credits_charged: int
    usage: Usage | None  # None when the ledger could not be read: the result goes out all the same
    too_large: bool = False  # larger than the reply can carry, so it was not downloaded: send the link
    extension: str = "png"  # the file's format once processed
    applied: ResultOptions = DEFAULT_OPTIONS  # what was done to it locally
    not_applied: ImageProblem | None = None  # options were asked for but could not be applied, and why
    linked: bool = field(default=False)  # the adapter gave the member Magic Hour's link: it must outlive them

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


@dataclass
class ImageOutcome:
    """How one image of a request ended: a result to deliver, or the reason it has none."""

    position: int
    filename: str | None
    result: JobResult | None = None
    error: BaseException | str | None = None  # what went wrong, or a reason recorded by an earlier process
    job: ImageJob | None = None  # the job that made `result` (every result has one)


@dataclass
class RequestResult:
    """Everything a request's final message says: each image in the member's order, and the server's usage."""

    outcomes: list[ImageOutcome]
    usage: Usage | None = None

    @property
    def delivered(self) -> list[ImageOutcome]:
        return [outcome for outcome in self.outcomes if outcome.result is not None]

    @property
    def failures(self) -> list[ImageOutcome]:
        return [outcome for outcome in self.outcomes if outcome.result is None]

    @property
    def credits_charged(self) -> int:
        return sum(outcome.result.credits_charged for outcome in self.delivered if outcome.result is not None)

    def close(self) -> None:
        """Close every result's file (spooled to disk when large); safe to call twice."""
        for outcome in self.outcomes:
            if outcome.result is not None:
                outcome.result.close()


InputRefresher = Callable[[ImageJob], Awaitable["ImageJob | None"]]
"""Fresh input URLs for a job whose inputs Magic Hour could not fetch (None: there are none)."""


def options_to_json(options: ResultOptions) -> str | None:
    """How a request's options are kept in the ledger (None for the default), so a restart applies them too."""
    if options.is_default:
        return None
    return json.dumps(
        {"color": list(options.color) if options.color else None, "trim": options.trim, "format": options.format}
    )


def options_from_json(text: str | None) -> ResultOptions:
    if not text:
        return DEFAULT_OPTIONS
    try:
        data = json.loads(text)
        color = tuple(data["color"]) if data.get("color") else None
        return ResultOptions(color=color, trim=bool(data.get("trim")), format=data.get("format", "png"))  # type: ignore[arg-type]
    except (ValueError, TypeError, KeyError):
        return DEFAULT_OPTIONS  # unreadable: deliver the result as Magic Hour made it
