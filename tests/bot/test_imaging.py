"""The image work behind "results made for Discord": real images built in memory with Pillow, no Discord.

Each test draws a subject of known box on transparency, runs the function, and decodes what came out.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import threading
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.imaging import (
    EMOJI_MAX_BYTES,
    EMOJI_SIDE,
    MAX_PIXELS,
    STICKER_MAX_BYTES,
    STICKER_SIDE,
    STICKER_TAG,
    TRIM_MARGIN,
    BadColor,
    BadFormat,
    CannotFit,
    EmojiImage,
    ImageProblem,
    ImageWorker,
    OptionApplied,
    ResultOptions,
    StickerImage,
    color_hex,
    emoji_name,
    make_emoji,
    make_sticker,
    parse_color,
    process,
    sticker_name,
    trim_box,
)
from bot.imaging.results import WEBP_MAX_PIXELS
from bot.inputs import output_filename

SUBJECT = (200, 40, 90, 255)
CLEAR = (0, 0, 0, 0)
Box = tuple[int, int, int, int]


# --------------------------------------------------------------------------- helpers


def cutout(size: tuple[int, int], box: Box, color: tuple[int, int, int, int] = SUBJECT) -> Image.Image:
    """A transparent canvas with an opaque rectangle filling `box` (right/bottom exclusive)."""
    image = Image.new("RGBA", size, CLEAR)
    image.paste(color, box)
    return image


def png(image: Image.Image, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **params)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def corners(image: Image.Image) -> list[tuple[int, ...]]:
    w, h = image.size
    return [image.getpixel(xy) for xy in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1))]


def noisy(size: tuple[int, int]) -> Image.Image:
    """Random colour and alpha: as incompressible as an image gets."""
    return Image.frombytes("RGBA", size, os.urandom(size[0] * size[1] * 4))


# --------------------------------------------------------------------------- colours


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#1E90FF", (30, 144, 255)),
        ("#1e90ff", (30, 144, 255)),
        ("#fff", (255, 255, 255)),
        ("#F0a", (255, 0, 170)),
        ("white", (255, 255, 255)),
        ("  BLACK ", (0, 0, 0)),
        ("DodgerBlue", (30, 144, 255)),
        ("dodger blue", (30, 144, 255)),
        ("dark-green", (0, 100, 0)),
    ],
)
def test_parse_color_accepts_hex_and_css_names(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_color(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("#12345", "`#12345` is not a colour: use #RRGGBB, #RGB or a colour name like white"),
        ("#ffff", "has transparency"),
        ("#ffffff80", "has transparency"),
        ("rgb(1, 2, 3)", "is not a colour"),
        ("hsl(0, 100%, 50%)", "is not a colour"),
        ("transparent", "is not a colour"),
        ("ff0000", "did you mean #ff0000?"),
        ("blurple", "is not a colour"),
        ("   ", "No colour given"),
    ],
)
def test_parse_color_refuses_everything_else_in_words(text: str, says: str) -> None:
    with pytest.raises(BadColor) as refused:
        parse_color(text)
    assert says in str(refused.value)
    assert isinstance(refused.value, ValueError)


def test_a_refused_colour_is_echoed_safely() -> None:
    with pytest.raises(BadColor) as refused:
        parse_color("`@everyone`\n" + "x" * 100)
    message = str(refused.value)
    assert message.count("`") == 2  # only the code span's own backticks
    assert "\n" not in message
    assert len(message) < 120


@given(st.tuples(*[st.integers(0, 255)] * 3))
def test_every_colour_survives_its_hex_spelling(rgb: tuple[int, int, int]) -> None:
    assert parse_color(color_hex(rgb)) == rgb
    assert parse_color(color_hex(rgb).lower()) == rgb


@given(st.text(max_size=40))
def test_any_text_is_a_colour_or_a_bad_color(text: str) -> None:
    try:
        red, green, blue = parse_color(text)
    except BadColor as refused:
        assert str(refused)
    else:
        assert all(0 <= c <= 255 for c in (red, green, blue))


# --------------------------------------------------------------------------- options


def test_default_options_say_nothing_was_asked() -> None:
    assert ResultOptions().is_default
    assert ResultOptions().describe() == ()
    assert ResultOptions.parse(color=None, trim=None, fmt=None).is_default
    assert ResultOptions.parse(color="  ", trim=False, fmt="png").is_default


def test_options_describe_what_changed_in_the_order_applied() -> None:
    options = ResultOptions.parse(color="dodgerblue", trim=True, fmt="WebP")
    assert not options.is_default
    assert options == ResultOptions(color=(30, 144, 255), trim=True, format="webp")
    assert options.describe() == (
        OptionApplied("trim", "on"),
        OptionApplied("color", "#1E90FF"),
        OptionApplied("format", "webp"),
    )


def test_options_refuse_unknown_formats_and_colours() -> None:
    with pytest.raises(BadFormat, match="choose `png` or `webp`"):
        ResultOptions.parse(fmt="gif")
    with pytest.raises(BadColor):
        ResultOptions.parse(color="#12345")
    with pytest.raises(ValueError, match="three values"):
        ResultOptions(color=(0, 0, 256))


# --------------------------------------------------------------------------- trim_box


def test_trim_box_is_the_subject_plus_the_margin() -> None:
    image = cutout((400, 300), (100, 50, 250, 200))
    assert trim_box(image, threshold=8, margin=10) == (90, 40, 260, 210)


def test_trim_box_is_clamped_to_the_image() -> None:
    image = cutout((400, 300), (2, 0, 398, 295))
    assert trim_box(image, threshold=8, margin=10) == (0, 0, 400, 300)


def test_trim_box_ignores_a_faint_fringe_and_finds_nothing_in_a_transparent_image() -> None:
    image = cutout((400, 300), (100, 50, 250, 200))
    image.paste((255, 255, 255, 5), (0, 0, 400, 10))  # a matte's near-invisible haze at the top
    assert trim_box(image, threshold=8, margin=0) == (100, 50, 250, 200)
    assert trim_box(Image.new("RGBA", (50, 50), CLEAR)) is None
    assert trim_box(Image.new("RGB", (50, 40), "white")) == (0, 0, 50, 40)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_trim_box_property(data: st.DataObject) -> None:
    width, height = data.draw(st.integers(1, 80)), data.draw(st.integers(1, 80))
    left, top = data.draw(st.integers(0, width - 1)), data.draw(st.integers(0, height - 1))
    right, bottom = data.draw(st.integers(left + 1, width)), data.draw(st.integers(top + 1, height))
    margin = data.draw(st.integers(0, 20))
    image = cutout((width, height), (left, top, right, bottom))
    assert trim_box(image, threshold=8, margin=margin) == (
        max(0, left - margin),
        max(0, top - margin),
        min(width, right + margin),
        min(height, bottom + margin),
    )


# --------------------------------------------------------------------------- process


def test_colour_fills_the_background_opaquely_and_keeps_the_subject() -> None:
    data = png(cutout((300, 200), (100, 50, 200, 150)))
    result = process(data, ResultOptions(color=(255, 255, 255)))
    image = decode(result.data).convert("RGBA")
    assert image.size == (300, 200) == (result.width, result.height)
    assert corners(image) == [(255, 255, 255, 255)] * 4
    assert image.getpixel((150, 100)) == SUBJECT
    assert image.getchannel("A").getextrema() == (255, 255)
    assert result.applied == ResultOptions(color=(255, 255, 255))
    assert result.extension == "png" and not result.skipped


def test_colour_blends_a_half_transparent_edge() -> None:
    data = png(cutout((10, 10), (0, 0, 10, 10), color=(255, 0, 0, 128)))
    image = decode(process(data, ResultOptions(color=(0, 0, 255))).data)
    red, green, blue = image.getpixel((5, 5))[:3]
    assert 120 <= red <= 135 and green == 0 and 120 <= blue <= 135


def test_trim_crops_to_the_subject_plus_the_margin() -> None:
    data = png(cutout((1000, 800), (300, 200, 500, 350)))
    result = process(data, ResultOptions(trim=True))
    image = decode(result.data)
    assert image.size == (200 + 2 * TRIM_MARGIN, 150 + 2 * TRIM_MARGIN)
    assert image.mode == "RGBA"
    assert corners(image) == [CLEAR] * 4
    assert image.getpixel((TRIM_MARGIN, TRIM_MARGIN)) == SUBJECT
    assert result.applied.describe() == (OptionApplied("trim", "on"),)


def test_trim_happens_before_the_colour() -> None:
    """Coloured first, the image would be opaque everywhere and the trim would find nothing to cut."""
    data = png(cutout((1000, 800), (300, 200, 500, 350)))
    result = process(data, ResultOptions(color=(0, 0, 0), trim=True))
    image = decode(result.data)
    assert image.size == (200 + 2 * TRIM_MARGIN, 150 + 2 * TRIM_MARGIN)
    assert image.mode == "RGB"
    assert corners(image) == [(0, 0, 0)] * 4
    assert image.getpixel((image.width // 2, image.height // 2)) == SUBJECT[:3]
    assert result.applied == ResultOptions(color=(0, 0, 0), trim=True)


def test_a_transparent_image_is_not_trimmed_and_says_so() -> None:
    data = png(Image.new("RGBA", (60, 40), CLEAR))
    result = process(data, ResultOptions(trim=True, color=(1, 2, 3)))
    assert decode(result.data).size == (60, 40)
    assert result.applied == ResultOptions(color=(1, 2, 3), trim=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_trim_then_colour_property(data: st.DataObject) -> None:
    width, height = data.draw(st.integers(20, 120)), data.draw(st.integers(20, 120))
    left, top = data.draw(st.integers(0, width - 1)), data.draw(st.integers(0, height - 1))
    right, bottom = data.draw(st.integers(left + 1, width)), data.draw(st.integers(top + 1, height))
    color = data.draw(st.tuples(*[st.integers(0, 255)] * 3))
    result = process(png(cutout((width, height), (left, top, right, bottom))), ResultOptions(color=color, trim=True))
    image = decode(result.data)
    expected = trim_box(cutout((width, height), (left, top, right, bottom)))
    assert expected is not None
    assert image.size == (expected[2] - expected[0], expected[3] - expected[1])
    assert image.mode == "RGB"
    assert image.getpixel((left - expected[0], top - expected[1])) == SUBJECT[:3]
    margin_visible = left - expected[0] > 0 and top - expected[1] > 0
    if margin_visible:
        assert image.getpixel((0, 0)) == color


def test_webp_is_lossless_and_keeps_alpha() -> None:
    source = noisy((64, 48))
    result = process(png(source), ResultOptions(format="webp"))
    image = decode(result.data)
    assert image.format == "WEBP" and result.extension == "webp"
    assert image.mode == "RGBA"
    assert image.tobytes() == source.tobytes()  # every pixel, colour under full transparency included
    assert result.applied.describe() == (OptionApplied("format", "webp"),)


def test_webp_with_trim_is_the_exact_crop() -> None:
    source = cutout((300, 200), (100, 50, 200, 150))
    source.paste(noisy((100, 100)), (100, 50))
    result = process(png(source), ResultOptions(trim=True, format="webp"))
    box = trim_box(source)
    assert box is not None and box != (0, 0, 300, 200)
    image = decode(result.data)
    assert image.format == "WEBP"
    assert image.tobytes() == source.crop(box).tobytes()


def test_webp_too_large_for_this_machine_falls_back_to_png() -> None:
    side = int(WEBP_MAX_PIXELS**0.5) + 2
    data = png(Image.new("RGBA", (side, side), (1, 2, 3, 255)))
    result = process(data, ResultOptions(format="webp"))
    assert decode(result.data).format == "PNG"
    assert result.extension == "png"
    assert result.applied.format == "png"


def test_the_colour_profile_is_kept() -> None:
    profile = b"\x00" * 128 + b"fake-icc-profile"
    data = png(cutout((40, 40), (10, 10, 30, 30)), icc_profile=profile)
    for options in (ResultOptions(color=(0, 0, 0)), ResultOptions(trim=True, format="webp")):
        assert decode(process(data, options).data).info.get("icc_profile") == profile


def test_default_options_return_the_input_untouched() -> None:
    data = png(cutout((30, 20), (5, 5, 10, 10)))
    result = process(data, ResultOptions())
    assert result.data is data
    assert (result.width, result.height, result.extension) == (30, 20, "png")
    assert not result.skipped


def huge_png(width: int, height: int) -> bytes:
    """A bilevel PNG: the header promises width × height pixels, the file is a few KB."""
    return png(Image.new("1", (width, height)), optimize=False)


def test_an_image_over_the_pixel_limit_is_delivered_unprocessed() -> None:
    data = huge_png(7000, 6000)  # 42 MP
    result = process(data, ResultOptions(color=(255, 255, 255), trim=True))
    assert result.problem is ImageProblem.TOO_LARGE and result.skipped
    assert result.data is data
    assert (result.width, result.height) == (7000, 6000)
    assert result.applied.is_default


def test_the_pixel_limit_is_inclusive() -> None:
    data = png(cutout((20, 10), (5, 2, 15, 8)))
    assert not process(data, ResultOptions(trim=True), max_pixels=200).skipped
    assert process(data, ResultOptions(trim=True), max_pixels=199).problem is ImageProblem.TOO_LARGE


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", png(cutout((50, 50), (1, 1, 9, 9)))[:60]],
    ids=["empty", "text", "truncated"],
)
def test_unreadable_bytes_are_delivered_unprocessed(data: bytes) -> None:
    result = process(data, ResultOptions(trim=True))
    assert result.problem is ImageProblem.UNREADABLE
    assert result.data is data
    assert process(data, ResultOptions()).data is data  # only the header is read: passed on either way


def test_output_names_follow_the_format() -> None:
    assert output_filename("shoe.jpg", "webp") == "shoe-no-background.webp"
    assert output_filename("shoe.jpg") == "shoe-no-background.png"


# --------------------------------------------------------------------------- emoji and stickers


def test_an_emoji_is_trimmed_and_fitted_into_128() -> None:
    data = png(cutout((1000, 1000), (100, 400, 700, 700)))
    emoji = make_emoji(data, "Crème brûlée-no-background.png")
    assert isinstance(emoji, EmojiImage)
    image = decode(emoji.data)
    assert image.format == "PNG"
    trimmed = (600 + 2 * TRIM_MARGIN, 300 + 2 * TRIM_MARGIN)
    assert image.size == (emoji.width, emoji.height) == (EMOJI_SIDE, round(EMOJI_SIDE * trimmed[1] / trimmed[0]))
    assert image.convert("RGBA").getpixel((0, 0))[3] == 0  # the margin stays transparent
    assert image.convert("RGBA").getpixel((64, image.height // 2)) == SUBJECT
    assert emoji.name == "Creme_brulee" and emoji.filename == "Creme_brulee.png"


def test_an_emoji_from_a_noisy_4000px_image_fits_discords_limits() -> None:
    data = png(noisy((4000, 4000)), compress_level=1)
    emoji = make_emoji(data, "noise.png")
    assert isinstance(emoji, EmojiImage)
    assert max(decode(emoji.data).size) == EMOJI_SIDE
    assert len(emoji.data) <= EMOJI_MAX_BYTES


def test_an_emoji_is_quantized_and_shrunk_until_it_fits() -> None:
    data = png(noisy((600, 600)))
    full = make_emoji(data, "noise.png")
    assert isinstance(full, EmojiImage) and decode(full.data).mode == "RGBA"
    budget = len(full.data) // 3
    squeezed = make_emoji(data, "noise.png", max_bytes=budget)
    assert isinstance(squeezed, EmojiImage)
    assert len(squeezed.data) <= budget
    assert decode(squeezed.data).mode == "P"  # palette, with transparency kept
    assert "transparency" in decode(squeezed.data).info


def test_an_emoji_that_cannot_be_made_small_enough_says_so() -> None:
    assert make_emoji(png(noisy((300, 300))), "x.png", max_bytes=300) == CannotFit(ImageProblem.TOO_MANY_BYTES)


def test_no_emoji_of_nothing_or_of_the_unreadable_or_oversized() -> None:
    assert make_emoji(png(Image.new("RGBA", (50, 50))), "x.png") == CannotFit(ImageProblem.NOTHING_VISIBLE)
    assert make_emoji(b"nope", "x.png") == CannotFit(ImageProblem.UNREADABLE)
    assert make_emoji(huge_png(7000, 6000), "x.png") == CannotFit(ImageProblem.TOO_LARGE)
    assert make_sticker(huge_png(7000, 6000), "x.png") == CannotFit(ImageProblem.TOO_LARGE)


def test_a_sticker_is_a_transparent_320_square_with_the_subject_centred() -> None:
    data = png(cutout((2000, 1000), (100, 100, 1700, 500)))  # wide subject, off centre
    sticker = make_sticker(data, "my_cat-no-background.png")
    assert isinstance(sticker, StickerImage)
    image = decode(sticker.data).convert("RGBA")
    assert image.size == (STICKER_SIDE, STICKER_SIDE) == (sticker.width, sticker.height)
    assert len(sticker.data) <= STICKER_MAX_BYTES
    assert corners(image) == [CLEAR] * 4
    assert image.getpixel((160, 160)) == SUBJECT
    alpha_box = image.getchannel("A").getbbox()
    assert alpha_box is not None
    left, top, right, bottom = alpha_box
    assert left <= 2 and right >= STICKER_SIDE - 2  # fitted to the width
    assert abs(top - (STICKER_SIDE - bottom)) <= 1  # centred vertically
    assert sticker.name == "my cat" and sticker.tag == STICKER_TAG == "scissors"


def test_a_noisy_sticker_fits_its_limit() -> None:
    sticker = make_sticker(png(noisy((1000, 1000)), compress_level=1), "noise.png")
    assert isinstance(sticker, StickerImage)
    assert decode(sticker.data).size == (STICKER_SIDE, STICKER_SIDE)
    assert len(sticker.data) <= STICKER_MAX_BYTES
    tight = make_sticker(png(noisy((1000, 1000)), compress_level=1), "noise.png", max_bytes=60_000)
    assert isinstance(tight, StickerImage)
    assert decode(tight.data).size == (STICKER_SIDE, STICKER_SIDE) and len(tight.data) <= 60_000


# --------------------------------------------------------------------------- names

EMOJI_NAME = re.compile(r"[A-Za-z0-9_]{2,32}")


@pytest.mark.parametrize(
    ("filename", "emoji", "sticker"),
    [
        ("shoe-no-background.png", "shoe", "shoe"),
        ("Crème brûlée.png", "Creme_brulee", "Crème brûlée"),
        ("日本の猫.png", "cutout", "日本の猫"),
        ("a.png", "a_cutout", "a cutout"),
        ("🐱.png", "cutout", "cutout"),
        ("../../etc/pass wd.png", "pass_wd", "pass wd"),
        ("C:\\Users\\me\\IMG_2041.JPG", "IMG_2041", "IMG 2041"),
        (".png", "png", "png"),
        (None, "cutout", "cutout"),
        ("x" * 40 + ".png", "x" * 32, "x" * 30),
    ],
)
def test_names_from_file_names(filename: str | None, emoji: str, sticker: str) -> None:
    assert emoji_name(filename) == emoji
    assert sticker_name(filename) == sticker


@given(st.text(max_size=80))
def test_any_file_name_gives_a_valid_emoji_name(filename: str) -> None:
    assert EMOJI_NAME.fullmatch(emoji_name(filename))


@given(st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9_]{0,30}[A-Za-z0-9])", fullmatch=True))
def test_a_name_that_is_already_valid_is_kept(stem: str) -> None:
    stem = re.sub("_+", "_", stem)
    assert emoji_name(f"{stem}.png") == stem


@given(st.text(max_size=80))
def test_any_file_name_gives_a_valid_sticker_name(filename: str) -> None:
    name = sticker_name(filename)
    assert 2 <= len(name) <= 30
    assert len(name.encode("utf-16-le")) // 2 == len(name)  # the same length however Discord counts
    assert name == " ".join(name.split())  # no edge or double spaces, no line breaks
    assert all(ch.isalnum() or ch == " " for ch in name)


# --------------------------------------------------------------------------- the worker


async def wait_until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


class Gate:
    """A blocking function that counts how many copies of it run at once."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0

    def work(self, value: int) -> int:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        self.open.wait(10)
        with self.lock:
            self.active -= 1
        return value


async def test_the_worker_runs_off_the_event_loop() -> None:
    async with ImageWorker() as worker:
        ident = await worker.run(threading.get_ident)
        assert ident != threading.get_ident()
        result = await worker.run(process, png(cutout((30, 20), (5, 5, 10, 10))), ResultOptions(trim=True))
        assert decode(result.data).size == (10 + TRIM_MARGIN, 10 + TRIM_MARGIN)  # trimmed; margin clamped at top/left


async def test_the_worker_bounds_how_many_run_at_once_even_when_callers_give_up() -> None:
    gate = Gate()
    async with ImageWorker(max_parallel=2) as worker:
        tasks = [asyncio.create_task(worker.run(gate.work, i)) for i in range(5)]
        await wait_until(lambda: gate.active == 2)
        assert worker.waiting == 3
        tasks[0].cancel()
        tasks[1].cancel()  # their threads cannot stop, so they still hold the two places
        await asyncio.sleep(0.05)  # a worker that let the others start would have done so by now
        assert gate.active == 2
        gate.open.set()
        assert await asyncio.gather(*tasks[2:]) == [2, 3, 4]
    assert gate.peak == 2


async def test_the_worker_passes_exceptions_through() -> None:
    def broken() -> None:
        raise KeyError("boom")

    async with ImageWorker(max_parallel=1) as worker:
        with pytest.raises(KeyError):
            await worker.run(broken)
        assert await worker.run(int, "7") == 7  # the slot was released


async def test_the_worker_makes_pillows_bomb_check_an_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    """With Pillow's own limit lowered, a header past it is refused by Pillow itself, as TOO_LARGE."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after the test
    async with ImageWorker() as worker:
        assert MAX_PIXELS == Image.MAX_IMAGE_PIXELS
        for data in (huge_png(9000, 5000), huge_png(10000, 9000)):  # a warning past the limit, an error past twice
            result = await worker.run(process, data, ResultOptions(trim=True), 10**9)
            assert result.problem is ImageProblem.TOO_LARGE
            assert result.data is data
