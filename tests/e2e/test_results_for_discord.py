"""Results made for Discord: `/remove-background color: trim: format:`, and the Add as emoji / Add as sticker
buttons on a delivered result, through discord.py's real dispatch.

Magic Hour's fake returns a real cutout (a filled circle on a transparent 64×64 square, `cutout_png`), so the
tests look at the pixels the member gets. The fake Discord serves the result's attachment from its CDN on
127.0.0.1 (the buttons read it back from there) and checks every emoji and sticker the bot creates against the
OpenAPI description and Discord's own rules (name, size, 320×320, slots, the bot's permission).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.imaging import TRIM_MARGIN
from bot.ledger import JobStatus
from tests.e2e.conftest import DISCORD_TOKEN, BotWorld, bot_world
from tests.e2e.test_user_installs import user_install
from tests.fakes.discord_api import EPHEMERAL, FakeDiscordAPI, RecordedRequest
from tests.fakes.interactions import (
    ADMINISTRATOR,
    CONTEXT_GUILD,
    CREATE_EXPRESSIONS,
    DEFAULT_APP_PERMISSIONS,
    DEFAULT_MEMBER_PERMISSIONS,
    MANAGE_EXPRESSIONS,
    User,
    make_attachment,
    make_user,
    snowflake,
)
from tests.fakes.magic_hour import SUBJECT_COLOR, FakeMagicHour, cutout_png
from tests.web.test_webhooks import job_status, webhook_world

CREATE = "/v1/image-background-remover"
SIDE, RADIUS = 64, 16  # the cutout: a circle covering pixels 16..47 on both axes
SUBJECT_BOX = (SIDE // 2 - RADIUS, SIDE // 2 - RADIUS, SIDE // 2 + RADIUS, SIDE // 2 + RADIUS)
EMOJI, STICKER = "mhbg:emoji", "mhbg:sticker"
MEMBER_WHO_MANAGES = DEFAULT_MEMBER_PERMISSIONS | MANAGE_EXPRESSIONS
BOT_WHO_CREATES = DEFAULT_APP_PERMISSIONS | CREATE_EXPRESSIONS


@pytest.fixture
async def world(tmp_path: Path, mh: FakeMagicHour) -> AsyncIterator[BotWorld]:
    mh.output_bytes = cutout_png(SIDE, RADIUS)
    async with bot_world(tmp_path, mh, harness={"local_cdn": True}) as w:
        yield w


async def run_command(world: BotWorld, options: dict[str, Any], **kw: Any) -> tuple[int, str]:
    payload = world.discord.slash_command("remove-background", options, **kw)
    interaction_id = world.discord.dispatch(payload)
    await world.discord.finished(interaction_id, timeout=10)
    return interaction_id, payload["token"]


def creates(mh: FakeMagicHour) -> int:
    return sum(1 for r in mh.requests if r.method == "POST" and r.path == CREATE)


def final_edit(world: BotWorld, token: str) -> RecordedRequest:
    edits = world.discord.original_edits(token)
    assert edits, "the bot never edited its reply"
    return edits[-1]


def only_file(world: BotWorld, token: str) -> tuple[str, Image.Image]:
    [upload] = final_edit(world, token).files
    image = Image.open(io.BytesIO(upload.data))
    image.load()
    return upload.filename, image


def ephemeral_refusal(world: BotWorld, interaction_id: int) -> str:
    [callback] = world.discord.callbacks(interaction_id)
    assert callback.json["type"] == 4 and callback.json["data"]["flags"] & EPHEMERAL
    return callback.json["data"]["content"]


def result_message(world: BotWorld, interaction_id: int) -> dict[str, Any]:
    message_id = world.discord.api.interactions[interaction_id].original_message_id
    assert message_id is not None
    return world.discord.messages[message_id]


def button_ids(message: dict[str, Any]) -> list[str]:
    return [button["custom_id"] for row in message.get("components", []) for button in row.get("components", [])]


async def press(
    world: BotWorld,
    message: dict[str, Any],
    custom_id: str,
    *,
    permissions: int = MEMBER_WHO_MANAGES,
    app_permissions: int = BOT_WHO_CREATES,
) -> str:
    """Press a result button; returns the answer, which must be ephemeral."""
    payload = world.discord.button_click(
        custom_id, message_id=int(message["id"]), permissions=permissions, app_permissions=app_permissions
    )
    interaction_id = world.discord.dispatch(payload)
    await world.discord.finished(interaction_id, timeout=10)
    [callback] = world.discord.callbacks(interaction_id)
    assert callback.json["data"]["flags"] & EPHEMERAL, "the answer to a press is for the presser only"
    if callback.json["type"] == 4:
        return callback.json["data"]["content"]
    assert callback.json["type"] == 5  # deferred ("thinking"), then the answer replaces it
    return final_edit(world, payload["token"]).json["content"]


# -- the options ---------------------------------------------------------------------------------------------


async def test_color_white_gives_an_opaque_png_with_white_corners_and_the_subject_in_the_middle(
    world: BotWorld,
) -> None:
    _, token = await run_command(
        world, {"image": make_attachment("cat.jpg", content_type="image/jpeg"), "color": "#ffffff"}
    )

    filename, image = only_file(world, token)
    assert filename == "cat-no-background.png"
    assert image.format == "PNG"
    assert "A" not in image.getbands() or image.getchannel("A").getextrema() == (255, 255)  # fully opaque
    rgb = image.convert("RGB")
    corners = [(0, 0), (SIDE - 1, 0), (0, SIDE - 1), (SIDE - 1, SIDE - 1)]
    assert {rgb.getpixel(xy) for xy in corners} == {(255, 255, 255)}
    assert rgb.getpixel((SIDE // 2, SIDE // 2)) == SUBJECT_COLOR[:3]
    assert creates(world.mh) == 1  # composited locally: no second Magic Hour job
    assert "on #FFFFFF" in final_edit(world, token).json["content"]


@pytest.mark.parametrize("option", [{"color": "white"}, {"trim": True}])
async def test_color_or_trim_with_a_background_is_refused_before_anything_is_charged(
    world: BotWorld, option: dict[str, Any]
) -> None:
    options = {"image": make_attachment("me.png"), "background": make_attachment("beach.png"), **option}
    interaction_id, _ = await run_command(world, options)

    text = ephemeral_refusal(world, interaction_id)
    assert "`background`" in text and "Nothing was charged" in text
    assert creates(world.mh) == 0
    assert await world.bot.ledger.get_job(interaction_id) is None  # nothing reserved


async def test_a_colour_the_bot_cannot_read_is_refused_in_the_parsers_words(world: BotWorld) -> None:
    interaction_id, _ = await run_command(world, {"image": make_attachment(), "color": "#12345"})
    text = ephemeral_refusal(world, interaction_id)
    assert "`#12345` is not a colour" in text and "Nothing was charged" in text
    assert creates(world.mh) == 0
    assert await world.bot.ledger.get_job(interaction_id) is None


async def test_trim_gives_a_smaller_image_tight_around_the_subject(world: BotWorld) -> None:
    _, token = await run_command(world, {"image": make_attachment("cat.png"), "trim": True})

    _, image = only_file(world, token)
    subject = SUBJECT_BOX[2] - SUBJECT_BOX[0]
    assert image.size == (subject + 2 * TRIM_MARGIN, subject + 2 * TRIM_MARGIN)  # smaller than 64×64
    assert image.getchannel("A").getbbox() == (
        TRIM_MARGIN,
        TRIM_MARGIN,
        TRIM_MARGIN + subject,
        TRIM_MARGIN + subject,
    )
    assert "trimmed to the subject" in final_edit(world, token).json["content"]


async def test_trim_then_colour_crops_first_and_fills_the_margin(world: BotWorld) -> None:
    _, token = await run_command(world, {"image": make_attachment("cat.png"), "trim": True, "color": "black"})
    _, image = only_file(world, token)
    assert image.size == (48, 48)
    assert image.convert("RGB").getpixel((0, 0)) == (0, 0, 0)


async def test_format_webp_gives_a_webp_with_alpha_named_accordingly(world: BotWorld) -> None:
    _, token = await run_command(world, {"image": make_attachment("cat.png"), "format": "webp"})

    filename, image = only_file(world, token)
    assert filename == "cat-no-background.webp"
    assert image.format == "WEBP"
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0))[3] == 0  # the corner is still transparent
    assert image.getpixel((SIDE // 2, SIDE // 2)) == SUBJECT_COLOR  # lossless


async def test_the_message_menu_delivers_the_transparent_png_as_magic_hour_made_it_with_the_buttons(
    world: BotWorld,
) -> None:
    message = world.discord.add_message(attachments=[make_attachment("dog.png")])
    payload = world.discord.message_context_menu("Remove background", message)
    interaction_id = world.discord.dispatch(payload)
    await world.discord.finished(interaction_id, timeout=10)
    [upload] = final_edit(world, payload["token"]).files
    assert upload.data == world.mh.output_bytes  # the default: untouched, transparent, untrimmed
    assert button_ids(result_message(world, interaction_id)) == [EMOJI, STICKER]


# -- where the buttons go -------------------------------------------------------------------------------------


async def test_a_public_result_in_a_server_carries_the_two_buttons_and_a_private_one_none(world: BotWorld) -> None:
    public, _ = await run_command(world, {"image": make_attachment("cat.png")})
    private, token = await run_command(world, {"image": make_attachment("cat.png"), "private": True})

    assert button_ids(result_message(world, public)) == [EMOJI, STICKER]
    assert final_edit(world, token).files  # the private result arrived, without buttons
    assert button_ids(result_message(world, private)) == []


async def test_a_result_in_a_members_own_install_has_no_buttons(tmp_path: Path, mh: FakeMagicHour) -> None:
    mh.output_bytes = cutout_png(SIDE, RADIUS)
    async with bot_world(tmp_path, mh, USER_INSTALL_CREDIT_LIMIT="20", harness={"local_cdn": True}) as world:
        in_server, _ = await run_command(world, {"image": make_attachment("cat.png")})
        payload = world.discord.slash_command("remove-background", {"image": make_attachment("cat.png")})
        payload = user_install(payload, context=CONTEXT_GUILD)  # a server that never added the bot
        interaction_id = world.discord.dispatch(payload)
        await world.discord.finished(interaction_id, timeout=10)

        assert button_ids(result_message(world, in_server)) == [EMOJI, STICKER]
        assert final_edit(world, payload["token"]).files
        assert button_ids(result_message(world, interaction_id)) == []


# -- Add as emoji -----------------------------------------------------------------------------------------------


async def test_add_as_emoji_by_a_member_who_manages_expressions_creates_one_emoji_within_discords_limits(
    world: BotWorld,
) -> None:
    interaction_id, _ = await run_command(world, {"image": make_attachment("My cat!.png")})

    text = await press(world, result_message(world, interaction_id), EMOJI)

    [emoji] = world.discord.api.emojis
    assert emoji.guild_id == world.discord.guild_id
    assert emoji.name == "My_cat"
    assert len(emoji.data) <= 256 * 1024
    image = Image.open(io.BytesIO(emoji.data))
    assert image.format == "PNG"
    assert max(image.size) == 128  # trimmed to the subject, then fitted into 128×128
    assert f"<:My_cat:{emoji.id}>" in text  # the emoji is shown in the answer


async def test_add_as_emoji_by_a_member_without_the_permission_creates_nothing_and_says_why(world: BotWorld) -> None:
    interaction_id, _ = await run_command(world, {"image": make_attachment("cat.png")})

    text = await press(world, result_message(world, interaction_id), EMOJI, permissions=DEFAULT_MEMBER_PERMISSIONS)

    assert world.discord.api.emojis == []
    assert not world.discord.api.find("POST", r"/emojis$")
    assert "Create Expressions or Manage Expressions" in text and "you" in text


async def test_a_member_with_create_expressions_alone_may_add_one(world: BotWorld) -> None:
    interaction_id, _ = await run_command(world, {"image": make_attachment("cat.png")})
    await press(
        world,
        result_message(world, interaction_id),
        EMOJI,
        permissions=DEFAULT_MEMBER_PERMISSIONS | CREATE_EXPRESSIONS,
    )
    assert [e.name for e in world.discord.api.emojis] == ["cat"]


async def test_a_bot_with_only_manage_expressions_does_not_try_and_says_it_needs_create_expressions(
    world: BotWorld,
) -> None:
    interaction_id, _ = await run_command(world, {"image": make_attachment("cat.png")})

    text = await press(
        world,
        result_message(world, interaction_id),
        EMOJI,
        app_permissions=DEFAULT_APP_PERMISSIONS | MANAGE_EXPRESSIONS,
    )

    assert not world.discord.api.find("POST", r"/emojis$")
    assert "I need the Create Expressions permission" in text


async def test_discords_own_permission_refusal_is_worded_too(world: BotWorld) -> None:
    """The interaction said the bot may, but its role lost the permission before the create."""
    interaction_id, _ = await run_command(world, {"image": make_attachment("cat.png")})
    world.discord.api.bot_guild_permissions[world.discord.guild_id] = DEFAULT_APP_PERMISSIONS

    text = await press(world, result_message(world, interaction_id), EMOJI)

    assert [r.status for r in world.discord.api.find("POST", r"/emojis$")] == [403]
    assert world.discord.api.emojis == []
    assert "I need the Create Expressions permission" in text


@pytest.mark.parametrize(("custom_id", "slots"), [(EMOJI, "emoji_slots"), (STICKER, "sticker_slots")])
async def test_a_server_without_free_slots_is_told_so(world: BotWorld, custom_id: str, slots: str) -> None:
    interaction_id, _ = await run_command(world, {"image": make_attachment("cat.png")})
    getattr(world.discord.api, slots)[world.discord.guild_id] = 0

    text = await press(world, result_message(world, interaction_id), custom_id)

    assert world.discord.api.emojis == [] and world.discord.api.stickers == []
    assert "no free" in text and "slots" in text


@pytest.mark.parametrize(("custom_id", "route", "code"), [(EMOJI, "emojis", 50138), (STICKER, "stickers", 50045)])
async def test_discord_refusing_the_size_is_told_as_not_small_enough(
    world: BotWorld, custom_id: str, route: str, code: int
) -> None:
    interaction_id, _ = await run_command(world, {"image": make_attachment("cat.png")})
    world.discord.fail_next("POST", rf"/{route}$", status=400, json={"message": "Too large", "code": code})

    text = await press(world, result_message(world, interaction_id), custom_id)

    assert "could not be made small enough" in text


async def test_a_fully_transparent_result_makes_no_emoji_and_says_why(world: BotWorld) -> None:
    world.mh.output_bytes = cutout_png(SIDE, radius=0)  # nothing left of the subject
    interaction_id, _ = await run_command(world, {"image": make_attachment("ghost.png")})

    text = await press(world, result_message(world, interaction_id), EMOJI)

    assert not world.discord.api.find("POST", r"/emojis$")
    assert "fully transparent" in text


# -- Add as sticker ---------------------------------------------------------------------------------------------


async def test_add_as_sticker_creates_one_320_square_png_named_from_the_file_with_an_emoji_tag(
    world: BotWorld,
) -> None:
    interaction_id, _ = await run_command(world, {"image": make_attachment("my_cat.png")})

    text = await press(world, result_message(world, interaction_id), STICKER)

    [sticker] = world.discord.api.stickers
    assert (sticker.guild_id, sticker.name, sticker.tags) == (world.discord.guild_id, "my cat", "scissors")
    assert len(sticker.data) <= 512 * 1024
    image = Image.open(io.BytesIO(sticker.data))
    assert (image.format, image.size) == ("PNG", (320, 320))
    assert image.getpixel((0, 0))[3] == 0  # centred on transparency
    assert image.getpixel((160, 160)) == SUBJECT_COLOR
    assert "`my cat`" in text


async def test_add_as_sticker_by_a_member_without_the_permission_creates_nothing(world: BotWorld) -> None:
    interaction_id, _ = await run_command(world, {"image": make_attachment("cat.png")})

    text = await press(world, result_message(world, interaction_id), STICKER, permissions=DEFAULT_MEMBER_PERMISSIONS)

    assert not world.discord.api.find("POST", r"/stickers$")
    assert "Adding a sticker needs the Create Expressions or Manage Expressions permission" in text


async def test_an_administrator_bot_may_create(world: BotWorld) -> None:
    interaction_id, _ = await run_command(world, {"image": make_attachment("cat.png")})
    await press(world, result_message(world, interaction_id), STICKER, app_permissions=ADMINISTRATOR)
    assert len(world.discord.api.stickers) == 1


# -- restarts and old results -------------------------------------------------------------------------------------


async def test_the_buttons_still_work_after_a_restart_and_past_the_commands_15_minutes(
    tmp_path: Path, mh: FakeMagicHour
) -> None:
    mh.output_bytes = cutout_png(SIDE, RADIUS)
    app = User(id=snowflake(), username="background-bot", bot=True)
    api = FakeDiscordAPI(
        token=DISCORD_TOKEN, application_id=app.id, bot_user=app, owner=make_user("owner"), local_cdn=True
    )
    await api.start()
    place = {"api": api, "guild_id": snowflake(), "channel_id": snowflake()}
    try:
        async with bot_world(tmp_path, mh, harness=place) as first:
            interaction_id, _ = await run_command(first, {"image": make_attachment("cat.png")})
            message = result_message(first, interaction_id)
        api.expire_interaction(interaction_id)  # the command's own token is long gone
        api.revoke_cdn_links()  # and the links it was given: a press carries freshly signed ones
        async with bot_world(tmp_path, mh, harness=place) as second:
            emoji_text = await press(second, message, EMOJI)
            sticker_text = await press(second, message, STICKER)
        assert [e.name for e in api.emojis] == ["cat"] and emoji_text.startswith("✅")
        assert [s.name for s in api.stickers] == ["cat"] and sticker_text.startswith("✅")
    finally:
        await api.close()


@pytest.mark.parametrize("token_alive", [True, False], ids=["in the reply", "in the channel"])
async def test_a_result_delivered_from_the_ledger_record_carries_the_buttons_too(
    tmp_path: Path, mh: FakeMagicHour, token_alive: bool
) -> None:
    """A held job found later by its webhook event is delivered from its request's record (no interaction in
    hand): through the token's webhook while it lives, else as a channel post; both get the buttons."""
    mh.output_bytes = cutout_png(SIDE, RADIUS)
    mh.job_duration = 3.0
    mh.fail_next("POST", CREATE, delay=4.0, after_processing=True)  # the job exists; the answer never comes
    mh.drop_webhooks(1)  # image.started is lost: the job is found by image.completed
    async with webhook_world(tmp_path, mh, MAGIC_HOUR_REQUEST_TIMEOUT="0.5") as world:
        payload = world.discord.slash_command("remove-background", {"image": make_attachment("cat.png")})
        interaction_id = world.discord.dispatch(payload)
        await job_status(world, interaction_id, JobStatus.HELD)
        if not token_alive:
            world.discord.api.expire_interaction(interaction_id)
        await job_status(world, interaction_id, JobStatus.COMPLETE)
        async with asyncio.timeout(5):
            while not (job := await world.bot.ledger.get_job(interaction_id)) or not job.delivered:
                await asyncio.sleep(0.02)

        if token_alive:
            assert final_edit(world, payload["token"]).files
            message = result_message(world, interaction_id)
        else:
            [post] = [p for p in world.discord.channel_messages(world.discord.channel_id) if p.files]
            message = world.discord.messages[int(post.response["id"])]
        assert button_ids(message) == [EMOJI, STICKER]
