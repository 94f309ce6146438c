"""Attachment checks: every refusal names the file and the reason, before anything is charged."""

from __future__ import annotations

import pytest

from bot.i18n import ENGLISH
from bot.inputs import InputFile, output_filename, problem_with

CDN = "https://cdn.discordapp.com/attachments/1/2/{name}?ex=67&is=66&hm=abc"
LIMIT = 20_000_000


def item(name: str = "cat.png", content_type: str | None = "image/png", size: int = 1000, url: str | None = None):
    return InputFile("image", name, content_type, size, url or CDN.format(name=name))


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("a.png", "image/png"),
        ("a.JPG", "image/jpeg"),
        ("a.jpeg", "image/jpeg"),
        ("a.webp", "image/webp"),
        ("a.heic", "image/heic"),
        ("a.avif", "image/avif"),
        ("a.tiff", "image/tiff"),
        ("a.bmp", "image/bmp"),
        ("a.jfif", "image/jpeg"),
    ],
)
def test_accepted_images(name: str, content_type: str) -> None:
    assert problem_with(item(name, content_type), LIMIT) is None


@pytest.mark.parametrize(
    ("candidate", "words"),
    [
        (item("clip.gif", "image/gif"), "has .gif"),
        (item("notes.txt", "text/plain"), "has .txt"),
        (item("noext", "image/png"), "has no extension"),
        (item("fake.png", "application/octet-stream"), "application/octet-stream, not an image"),
        (item("fake.png", None), "an unknown type"),
        (item("empty.png", size=0), "is empty"),
        (item("huge.png", size=LIMIT + 1), "the limit is 20.0 MB"),
        (item("a.png", url="https://cdn.discordapp.com/attachments/1/2/blob?ex=1"), "without an image extension"),
    ],
)
def test_refusals_say_exactly_what_is_wrong(candidate: InputFile, words: str) -> None:
    refused = problem_with(candidate, LIMIT)
    assert refused is not None
    problem = ENGLISH.say(refused)
    assert words in problem
    assert candidate.filename in problem


def test_output_names_are_recognisable_and_safe() -> None:
    assert output_filename("cat.jpg") == "cat-no-background.png"
    assert output_filename("../../etc/pass wd.png") == "pass-wd-no-background.png"
    assert output_filename(None) == "image-no-background.png"
