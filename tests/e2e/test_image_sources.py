"""Images from embeds, stickers, avatars and links, driven through discord.py's real dispatch.

The fake Discord checks every request against Discord's OpenAPI description (the attachment refresh, which
that file lacks, is checked by its own route); the fake Magic Hour records which URL each job was given.
Nothing here is downloaded by the bot: Magic Hour is handed the link.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.ledger import JobStatus
from tests.e2e.conftest import BotWorld
from tests.fakes.discord_api import EPHEMERAL, RecordedRequest
from tests.fakes.interactions import (
    STICKER_APNG,
    STICKER_GIF,
    STICKER_LOTTIE,
    STICKER_PNG,
    avatar_hash,
    external_proxy_url,
    gifv_embed,
    image_embed,
    make_attachment,
    make_member,
    make_sticker,
    make_user,
    rich_embed,
    video_embed,
)
from tests.fakes.magic_hour import UPLOAD_URLS_PATH, FakeMagicHour

CREATE = "/v1/image-background-remover"
AVATARS = "https://cdn.discordapp.com"
REFRESH = r"^/attachments/refresh-urls$"


def creates(mh: FakeMagicHour) -> list[Any]:
    return [r for r in mh.requests if r.method == "POST" and r.path == CREATE]


def sent_images(mh: FakeMagicHour) -> list[str]:
    return [c.json["assets"]["image_file_path"] for c in creates(mh)]


def last_edit(world: BotWorld, token: str) -> RecordedRequest:
    edits = world.discord.original_edits(token)
    assert edits, "the bot never edited its reply"
    return edits[-1]


def ephemeral_refusal(world: BotWorld, interaction_id: int) -> str:
    """The text of a refusal sent as the first, ephemeral answer; it must be the only answer."""
    [callback] = world.discord.callbacks(interaction_id)
    assert callback.json["type"] == 4
    assert callback.json["data"]["flags"] & EPHEMERAL
    return callback.json["data"]["content"]


async def run(world: BotWorld, payload: dict[str, Any], timeout: float = 15) -> int:
    interaction_id = world.discord.dispatch(payload)
    await world.discord.finished(interaction_id, timeout=timeout)
    await world.discord.finished(timeout=timeout)
    return interaction_id


async def menu(world: BotWorld, message: dict[str, Any]) -> tuple[int, str]:
    payload = world.discord.message_context_menu("Remove background", message)
    return await run(world, payload), payload["token"]


async def slash(world: BotWorld, options: dict[str, Any], **kw: Any) -> tuple[int, str]:
    payload = world.discord.slash_command("remove-background", options, **kw)
    return await run(world, payload), payload["token"]


# -- the message menu: embeds and stickers ------------------------------------------------------------------


async def test_menu_on_an_image_embed_and_a_png_sticker_delivers_two_results(world: BotWorld) -> None:
    picture = "https://pics.example.com/albums/sunset.jpg"
    wave = make_sticker("Wave", STICKER_PNG)
    message = world.discord.add_message(content=picture, embeds=[image_embed(picture)], stickers=[wave])
    interaction_id, token = await menu(world, message)

    assert sent_images(world.mh) == [
        external_proxy_url(picture),  # Discord's media proxy copy, not the member's original address
        f"{AVATARS}/stickers/{wave.id}.png",
    ]
    final = last_edit(world, token)
    assert [f.filename for f in final.files] == ["sunset-no-background.png", "Wave-no-background.png"]
    assert "from 2 of 2 images" in final.json["content"] and "10 credits in total" in final.json["content"]
    assert world.discord.followups(token) == []  # nothing was left out, so nothing more is said
    jobs = [await world.bot.ledger.get_job(interaction_id, position) for position in range(2)]
    assert all(job is not None and job.status is JobStatus.COMPLETE for job in jobs)


async def test_menu_takes_an_embeds_image_over_its_thumbnail_and_an_animated_png_sticker(world: BotWorld) -> None:
    card = rich_embed(image="https://shop.example.com/p/boot.webp", thumbnail="https://shop.example.com/logo.png")
    dance = make_sticker("dance", STICKER_APNG)
    message = world.discord.add_message(attachments=[make_attachment("shoe.png")], embeds=[card], stickers=[dance])
    _, token = await menu(world, message)
    images = sent_images(world.mh)
    assert images[0].split("?")[0].endswith("/shoe.png")  # attachments first
    assert images[1:] == [
        external_proxy_url("https://shop.example.com/p/boot.webp"),
        f"{AVATARS}/stickers/{dance.id}.png",
    ]
    assert [f.filename for f in last_edit(world, token).files] == [
        "shoe-no-background.png",
        "boot-no-background.png",
        "dance-no-background.png",
    ]


async def test_menu_on_a_gif_embed_explains_with_no_magic_hour_call(world: BotWorld) -> None:
    message = world.discord.add_message(content="https://tenor.com/view/party-gif-123", embeds=[gifv_embed()])
    interaction_id, _ = await menu(world, message)
    text = ephemeral_refusal(world, interaction_id)
    assert "no image Magic Hour can use" in text
    assert "`party.png` (a GIF)" in text  # named after the embed's picture
    assert world.mh.requests == []
    assert await world.bot.ledger.get_job(interaction_id) is None


async def test_menu_names_what_it_left_out_once_the_results_are_in(world: BotWorld) -> None:
    message = world.discord.add_message(
        attachments=[make_attachment("clip.mp4", content_type="video/mp4"), make_attachment("dog.png")],
        embeds=[video_embed()],
        stickers=[make_sticker("blob", STICKER_LOTTIE), make_sticker("wiggle", STICKER_GIF)],
    )
    _, token = await menu(world, message)
    assert len(creates(world.mh)) == 1
    assert [f.filename for f in last_edit(world, token).files] == ["dog-no-background.png"]
    [note] = world.discord.followups(token)
    assert note.json["flags"] & EPHEMERAL  # only the member sees it
    text = note.json["content"]
    for named in (
        "`clip.mp4` (a video)",
        "`hqdefault.jpg` (a video)",
        "`blob` (an animated Lottie",
        "`wiggle` (a GIF)",
    ):
        assert named in text
    # The note followed the result: the reply was edited before it, so it did not replace the reply.
    assert world.discord.api.requests.index(note) > world.discord.api.requests.index(last_edit(world, token))


async def test_menu_takes_ten_images_and_says_how_many_more_there_were(world: BotWorld) -> None:
    message = world.discord.add_message(
        attachments=[make_attachment(f"a{i}.png") for i in range(9)],
        embeds=[image_embed(f"https://pics.example.com/e{i}.png") for i in range(3)],
    )
    _, token = await menu(world, message)
    assert len(creates(world.mh)) == 10
    [note] = world.discord.followups(token)
    assert "2 more were left out" in note.json["content"]


async def test_menu_refreshes_only_attachments_through_discord_and_never_refetches_the_message(
    world: BotWorld,
) -> None:
    world.discord.api.message_content_intent = False  # this bot's case: a re-fetched message shows no files
    picture = "https://pics.example.com/cat.png"
    message = world.discord.add_message(attachments=[make_attachment("old.png")], embeds=[image_embed(picture)])
    first_url = message["attachments"][0]["url"]
    world.mh.fetchable = lambda url: url not in (first_url, external_proxy_url(picture))
    world.discord.api.revoke_cdn_links()
    payload = world.discord.message_context_menu("Remove background", message)
    payload["data"]["resolved"]["messages"][message["id"]]["attachments"][0]["url"] = first_url
    interaction_id = await run(world, payload)

    images = sent_images(world.mh)
    assert images.count(external_proxy_url(picture)) == 1  # the embed is not refreshed or retried
    assert images.count(first_url) == 1
    [fresh] = [url for url in images if url not in (first_url, external_proxy_url(picture))]
    assert fresh.split("?")[0] == first_url.split("?")[0]
    refreshes = world.discord.api.find("POST", REFRESH)
    assert [r.json for r in refreshes] == [{"attachment_urls": [first_url]}]  # the attachment alone, once
    assert world.discord.api.find("GET", r"/messages/\d+$") == []
    final = last_edit(world, payload["token"])
    assert [f.filename for f in final.files] == ["old-no-background.png"]
    assert "`cat.png`" in final.json["content"]  # the embed's failure is named
    embed_job = await world.bot.ledger.get_job(interaction_id, 1)
    assert embed_job is not None and embed_job.status is JobStatus.FAILED and embed_job.credits_charged == 0


# -- the user menu: avatars ---------------------------------------------------------------------------------


async def test_avatar_menu_sends_the_server_avatar_as_a_1024px_png_and_delivers_it(world: BotWorld) -> None:
    server_avatar = avatar_hash(animated=True)
    target = make_member(make_user("zoe", avatar=avatar_hash()), avatar=server_avatar, nick="Zoë")
    payload = world.discord.user_context_menu("Remove avatar background", target)
    interaction_id = await run(world, payload)

    guild = world.discord.guild_id
    assert sent_images(world.mh) == [
        f"{AVATARS}/guilds/{guild}/users/{target.id}/avatars/{server_avatar}.png?size=1024"
    ]
    final = last_edit(world, payload["token"])
    assert [f.filename for f in final.files] == ["Zoë-avatar-no-background.png"]
    assert "5 credits" in final.json["content"]
    job = await world.bot.ledger.get_job(interaction_id)
    assert job is not None and job.status is JobStatus.COMPLETE and job.user_id == world.discord.user.id


async def test_avatar_menu_without_a_server_avatar_takes_the_account_avatar(world: BotWorld) -> None:
    account_avatar = avatar_hash()
    target = make_user("sam", avatar=account_avatar)
    await run(world, world.discord.user_context_menu("Remove avatar background", target))
    assert sent_images(world.mh) == [f"{AVATARS}/avatars/{target.id}/{account_avatar}.png?size=1024"]


async def test_avatar_menu_on_a_default_avatar_refuses_with_no_call(world: BotWorld) -> None:
    target = make_member(make_user("newbie"))
    interaction_id = await run(world, world.discord.user_context_menu("Remove avatar background", target))
    text = ephemeral_refusal(world, interaction_id)
    assert "default avatar" in text and "Nothing was charged" in text
    assert world.mh.requests == []
    assert await world.bot.ledger.get_job(interaction_id) is None


# -- /remove-background url: ------------------------------------------------------------------------------


async def test_url_is_passed_to_magic_hour_verbatim_and_the_result_named_after_its_file(world: BotWorld) -> None:
    link = "https://pics.example.com/a/My%20Cat.jpeg?w=800&sig=x#top"
    interaction_id, token = await slash(world, {"url": link})
    assert sent_images(world.mh) == [link]
    assert [f.filename for f in last_edit(world, token).files] == ["My-Cat-no-background.png"]
    job = await world.bot.ledger.get_job(interaction_id)
    assert job is not None and job.status is JobStatus.COMPLETE and job.credits_charged == 5


async def test_url_combines_with_more_images_and_a_background(world: BotWorld) -> None:
    link = "https://pics.example.com/cat.png"
    backdrop = make_attachment("beach.webp", content_type="image/webp")
    _, token = await slash(world, {"url": link, "image2": make_attachment("dog.png"), "background": backdrop})
    bodies = sorted((c.json["assets"] for c in creates(world.mh)), key=lambda a: a["image_file_path"] != link)
    assert bodies[0]["image_file_path"] == link
    assert bodies[1]["image_file_path"].split("?")[0].endswith("/dog.png")
    assert all(b["background_image_file_path"].split("?")[0].endswith("/beach.webp") for b in bodies)
    assert [f.filename for f in last_edit(world, token).files] == ["cat-no-background.png", "dog-no-background.png"]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"url": "http://pics.example.com/cat.png"}, "must start with `https://`"),
        ({"url": "https://127.0.0.1/cat.png"}, "IP address"),
        ({"url": "https://2130706433/cat.png"}, "IP address"),
        ({"url": "https://user:pw@pics.example.com/cat.png"}, "user name or password"),
        ({"url": "https://localhost/cat.png"}, "`localhost`"),
        ({"url": "https://pics.example.com/cat"}, "doesn't end in a file extension"),
        ({"url": "https://pics.example.com/cat.png", "image": make_attachment()}, "not both"),
        ({"image2": make_attachment()}, "Attach an `image` or give a `url`"),
    ],
)
async def test_url_that_cannot_be_a_public_image_is_refused_with_no_call(
    world: BotWorld, options: dict[str, Any], words: str
) -> None:
    interaction_id, _ = await slash(world, options)
    text = ephemeral_refusal(world, interaction_id)
    assert words in text and "Nothing was charged" in text
    assert world.mh.requests == []
    assert await world.bot.ledger.get_job(interaction_id) is None


async def test_a_link_magic_hour_cannot_fetch_is_not_retried_and_costs_nothing(world: BotWorld) -> None:
    link = "https://pics.example.com/private/cat.png"
    world.mh.fetchable = lambda url: url != link
    interaction_id, token = await slash(world, {"url": link})
    assert sent_images(world.mh) == [link]  # once: a fresh copy would mean the bot downloading it
    assert world.discord.api.find("POST", REFRESH) == []
    assert [r for r in world.mh.requests if r.path == UPLOAD_URLS_PATH] == []
    assert "couldn't fetch the image" in last_edit(world, token).json["content"]
    job = await world.bot.ledger.get_job(interaction_id)
    assert job is not None and job.status is JobStatus.FAILED and job.credits_charged == 0
    assert (await world.bot.ledger.usage(world.discord.guild_id)).total == 0


async def test_the_commands_discord_gets_declare_the_url_option_and_the_user_menu(world: BotWorld) -> None:
    [put] = [r for r in world.discord.requests if r.method == "PUT" and r.path.endswith("/commands")]
    by_name = {(c["name"], c.get("type", 1)): c for c in put.json}
    assert ("Remove avatar background", 2) in by_name  # type 2: a user context menu
    options = {o["name"]: o for o in by_name[("remove-background", 1)]["options"]}
    assert not options["image"].get("required", False)
    assert options["url"]["type"] == 3 and options["url"]["max_length"] == 2000
    assert not options["url"].get("required", False)
