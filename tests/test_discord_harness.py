"""Self-tests of the fake Discord: a throwaway bot, driven through discord.py's real interaction dispatch."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from PIL import Image, PngImagePlugin

from tests.fakes.discord_api import EPHEMERAL, LOADING
from tests.fakes.discord_contract import contract
from tests.fakes.discord_harness import DiscordHarness
from tests.fakes.interactions import (
    ATTACHMENT_SIZE_LIMIT,
    DEFAULT_MEMBER_PERMISSIONS,
    MANAGE_GUILD,
    Option,
    make_attachment,
    make_member,
    make_user,
    png_bytes,
)

RESULT_PNG = png_bytes(3, 2)


class OnlyInvoker(discord.ui.View):
    """A button only the person who ran the command may press."""

    def __init__(self, invoker_id: int) -> None:
        super().__init__(timeout=60)
        self.invoker_id = invoker_id

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.invoker_id:
            await interaction.response.send_message("This is not your job.", ephemeral=True)
            return False
        return True

    @discord.ui.button(label="Cancel", custom_id="cancel-job", style=discord.ButtonStyle.danger)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button[OnlyInvoker]) -> None:
        await interaction.response.edit_message(content="Cancelled.", view=None)


class Throwaway(commands.Cog):
    """Just enough of a bot to exercise every path the real cogs use."""

    credits = app_commands.Group(name="credits", description="Credit limits", guild_only=True)

    def __init__(self, bot: TinyBot) -> None:
        self.bot = bot

    @app_commands.command(name="remove-background", description="Remove a background")
    async def remove_background(
        self, interaction: discord.Interaction, image: discord.Attachment, name: str | None = None
    ) -> None:
        self.bot.seen.append({"image": image, "name": name, "interaction": interaction})
        callback = await interaction.response.defer(thinking=True)
        self.bot.seen[-1]["callback"] = callback
        await interaction.edit_original_response(
            content=f"Done: {image.filename}",
            attachments=[discord.File(io.BytesIO(RESULT_PNG), "result.png")],
        )
        await interaction.followup.send("Charged 5 credits.", ephemeral=True)

    @credits.command(name="set-limit", description="Set the monthly limit")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def set_limit(self, interaction: discord.Interaction, limit: int, ratio: float = 1.0) -> None:
        self.bot.seen.append({"limit": limit, "ratio": ratio})
        await interaction.response.send_message(f"Limit set to {limit}.", ephemeral=True)


class TinyBot(commands.Bot):
    def __init__(self, **options: Any) -> None:
        super().__init__(command_prefix=commands.when_mentioned, intents=discord.Intents(guilds=True), **options)
        self.seen: list[dict[str, Any]] = []

    async def setup_hook(self) -> None:
        await self.add_cog(Throwaway(self))
        self.tree.add_command(app_commands.ContextMenu(name="Remove background", callback=self.menu))

    async def menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        self.seen.append({"message": message})
        names = ", ".join(a.filename for a in message.attachments)
        await interaction.response.send_message(f"Working on {names}", view=OnlyInvoker(interaction.user.id))


@pytest.fixture
async def harness() -> Any:
    async with DiscordHarness(TinyBot()) as discord_fake:
        yield discord_fake


async def test_login_answers_identity_and_runs_setup_hook(harness: DiscordHarness) -> None:
    bot = harness.bot
    assert [(r.method, r.path) for r in harness.requests[:2]] == [
        ("GET", "/users/@me"),
        ("GET", "/oauth2/applications/@me"),
    ]
    assert harness.requests[0].headers["Authorization"] == "Bot test-token"
    assert bot.user is not None and bot.user.id == harness.application_id
    assert bot.application_id == harness.application_id
    assert bot.tree.get_command("remove-background") is not None  # setup_hook ran


async def test_wrong_token_is_refused_like_discord() -> None:
    harness = DiscordHarness(TinyBot(), token="right-token")
    harness.token = "wrong-token"
    with pytest.raises(discord.LoginFailure):
        await harness.__aenter__()
    assert discord.http.Route.BASE == "https://discord.com/api/v10"  # restored even after a failed login


async def test_slash_command_defers_edits_with_file_and_follows_up(harness: DiscordHarness) -> None:
    image = make_attachment("cat.png", size=2048, content_type="image/png", width=640, height=480)
    payload = harness.slash_command("remove-background", {"image": image, "name": "x"})
    token = payload["token"]

    interaction_id = harness.dispatch(payload)
    await harness.wait_for(lambda _: len(harness.followups(token)) == 1)

    [callback] = harness.callbacks(interaction_id)
    assert callback.json == {"type": 5}
    assert callback.query["with_response"] == "1" and callback.status == 200
    assert harness.ack_delay(interaction_id) is not None

    [edit] = harness.original_edits(token)
    assert edit.json["content"] == "Done: cat.png"
    assert [(f.filename, f.data) for f in edit.files] == [("result.png", RESULT_PNG)]
    edited = edit.response
    assert edited["attachments"][0]["filename"] == "result.png"
    assert (edited["attachments"][0]["width"], edited["attachments"][0]["height"]) == (3, 2)
    assert edited["flags"] & LOADING == 0

    [followup] = harness.followups(token)
    assert followup.json["content"] == "Charged 5 credits." and followup.json["flags"] == EPHEMERAL

    seen = harness.bot.seen[0]
    parsed: discord.Attachment = seen["image"]
    assert (parsed.id, parsed.filename, parsed.size, parsed.content_type) == (
        image.id,
        "cat.png",
        2048,
        "image/png",
    )
    assert (parsed.width, parsed.height) == (640, 480)
    assert parsed.url.startswith("https://cdn.discordapp.com/ephemeral-attachments/")
    assert all(f"{key}=" in parsed.url for key in ("ex", "is", "hm"))
    assert seen["name"] == "x"
    interaction: discord.Interaction = seen["interaction"]
    assert interaction.filesize_limit == ATTACHMENT_SIZE_LIMIT
    assert interaction.guild_id == harness.guild_id and interaction.channel_id == harness.channel_id
    assert isinstance(interaction.user, discord.Member)
    assert not interaction.permissions.manage_guild
    assert seen["callback"].message_id == int(edited["id"])  # discord.py parsed the with_response body


async def test_synced_guild_commands_are_routed_by_guild_id(harness: DiscordHarness) -> None:
    guild = discord.Object(harness.guild_id)
    harness.bot.tree.copy_global_to(guild=guild)
    synced = await harness.bot.tree.sync(guild=guild)

    assert {c.name for c in synced} == {"remove-background", "credits", "Remove background"}
    payload = harness.slash_command("remove-background", {"image": make_attachment()})
    assert payload["data"]["guild_id"] == str(harness.guild_id)
    assert payload["data"]["id"] == str(next(c.id for c in synced if c.name == "remove-background"))
    interaction_id = harness.dispatch(payload)
    await harness.wait_for(lambda _: len(harness.followups(payload["token"])) == 1)
    assert harness.callbacks(interaction_id)[0].json["type"] == 5


async def test_subcommand_parses_options_and_checks_permissions(harness: DiscordHarness) -> None:
    refused = harness.dispatch(harness.slash_command("credits", {"limit": 50}, subcommand="set-limit"))
    error = await harness.wait_for_error()
    assert isinstance(error, app_commands.MissingPermissions)
    assert harness.callbacks(refused) == []

    admin = make_member(permissions=DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD)
    payload = harness.slash_command("credits", {"limit": 50, "ratio": 2}, subcommand="set-limit", user=admin)
    assert payload["data"]["options"][0]["options"][1] == {"name": "ratio", "type": 10, "value": 2.0}
    allowed = harness.dispatch(payload)
    await harness.wait_for(lambda _: len(harness.callbacks(allowed)) == 1)
    [reply] = harness.callbacks(allowed)
    assert reply.json["type"] == 4
    assert (reply.json["data"]["content"], reply.json["data"]["flags"]) == ("Limit set to 50.", EPHEMERAL)
    assert harness.bot.seen == [{"limit": 50, "ratio": 2.0}]


async def test_context_menu_resolves_message_and_button_refuses_others(harness: DiscordHarness) -> None:
    posted = harness.add_message(content="look", attachments=[make_attachment("dog.webp", content_type="image/webp")])
    menu = await harness.run(harness.message_context_menu("Remove background", posted))

    message: discord.Message = harness.bot.seen[0]["message"]
    assert message.id == int(posted["id"]) and message.content == "look"
    assert [a.filename for a in message.attachments] == ["dog.webp"]
    reply = harness.callbacks(menu)[0].response["resource"]["message"]
    assert reply["content"] == "Working on dog.webp"
    assert reply["components"][0]["components"][0]["custom_id"] == "cancel-job"

    stranger = make_user("mallory")
    other = await harness.run(harness.button_click("cancel-job", message_id=int(reply["id"]), user=stranger))
    refusal = harness.callbacks(other)[0].json
    assert (refusal["type"], refusal["data"]["content"], refusal["data"]["flags"]) == (
        4,
        "This is not your job.",
        EPHEMERAL,
    )
    assert harness.messages[int(reply["id"])]["content"] == "Working on dog.webp"

    owner = await harness.run(harness.button_click("cancel-job", message_id=int(reply["id"])))
    assert harness.callbacks(owner)[0].json["type"] == 7
    assert harness.messages[int(reply["id"])]["content"] == "Cancelled."
    assert harness.messages[int(reply["id"])]["components"] == []


async def test_failing_edit_surfaces_as_not_found(harness: DiscordHarness) -> None:
    harness.fail_next("PATCH", r"/messages/@original$", status=404)
    harness.dispatch(harness.slash_command("remove-background", {"image": make_attachment()}))
    error = await harness.wait_for_error()
    assert isinstance(error, discord.NotFound)
    assert error.code == 10008


async def test_rate_limited_followup_is_retried_by_discord_py(harness: DiscordHarness) -> None:
    harness.fail_next("POST", r"^/webhooks/\d+/[^/]+$", status=429, retry_after=0.01)
    payload = harness.slash_command("remove-background", {"image": make_attachment()})
    harness.dispatch(payload)
    await harness.wait_for(lambda _: any(r.status == 200 for r in harness.followups(payload["token"])))
    assert [r.status for r in harness.followups(payload["token"])] == [429, 200]
    assert harness.errors == []


async def test_expired_interaction_is_unknown(harness: DiscordHarness) -> None:
    payload = harness.slash_command("remove-background", {"image": make_attachment()})
    harness.api.register_interaction(payload)
    harness.api.expire_interaction(int(payload["id"]))
    harness.bot._connection.parse_interaction_create(payload)
    error = await harness.wait_for_error()
    assert isinstance(error, discord.NotFound) and error.code == 10062


async def test_hundred_interactions_at_once_are_all_acknowledged(harness: DiscordHarness) -> None:
    ids = [
        harness.dispatch(harness.slash_command("remove-background", {"image": make_attachment(f"{n}.png")}))
        for n in range(100)
    ]
    await harness.wait_for(lambda reqs: sum(r.path.endswith("/callback") for r in reqs) >= 100, timeout=30)
    await harness.wait_for(lambda reqs: sum(r.path.startswith("/webhooks/") for r in reqs) >= 200, timeout=30)
    assert all(len(harness.callbacks(i)) == 1 and harness.callbacks(i)[0].status == 200 for i in ids)
    assert harness.errors == []


async def test_dm_interaction_parses_without_guild(harness: DiscordHarness) -> None:
    payload = harness.slash_command("remove-background", {"image": make_attachment()}, guild_id=None)
    assert "member" not in payload and "user" in payload
    harness.dispatch(payload)
    await harness.wait_for(lambda _: len(harness.followups(payload["token"])) == 1)
    interaction: discord.Interaction = harness.bot.seen[0]["interaction"]
    assert interaction.guild is None and isinstance(interaction.user, discord.User)


async def test_explicit_option_type_is_kept(harness: DiscordHarness) -> None:
    payload = harness.slash_command("credits", {"limit": Option(4, 7)}, subcommand="set-limit")
    assert payload["data"]["options"] == [
        {"name": "set-limit", "type": 1, "options": [{"name": "limit", "type": 4, "value": 7}]}
    ]


async def test_real_cdn_is_blocked_so_tests_never_reach_the_internet(harness: DiscordHarness) -> None:
    posted = harness.add_message(attachments=[make_attachment()])
    attachment = discord.Attachment(data=posted["attachments"][0], state=harness.bot._connection)
    with pytest.raises(aiohttp.ClientConnectorError):
        await attachment.read()


async def test_local_cdn_serves_bytes_and_fetch_refreshes_expired_links() -> None:
    picture = png_bytes(5, 4)
    async with DiscordHarness(TinyBot(), local_cdn=True, ready=True) as harness:
        await asyncio.wait_for(harness.bot.wait_until_ready(), timeout=5)
        posted = harness.add_message(attachments=[make_attachment("photo.png", data=picture)])
        channel = harness.bot.get_partial_messageable(harness.channel_id)
        message = await channel.fetch_message(int(posted["id"]))
        assert await message.attachments[0].read() == picture

        harness.api.revoke_cdn_links()
        with pytest.raises(discord.NotFound):
            await message.attachments[0].read()
        fresh = await channel.fetch_message(int(posted["id"]))
        assert fresh.attachments[0].url != message.attachments[0].url
        assert await fresh.attachments[0].read() == picture


async def test_channel_messages_are_recorded_and_stored(harness: DiscordHarness) -> None:
    channel = harness.bot.get_partial_messageable(harness.channel_id)
    sent = await channel.send("Result", file=discord.File(io.BytesIO(RESULT_PNG), "out.png"))
    [request] = harness.channel_messages(harness.channel_id)
    assert request.json["content"] == "Result" and request.files[0].data == RESULT_PNG
    assert sent.author.id == harness.application_id
    assert harness.messages[sent.id]["attachments"][0]["filename"] == "out.png"
    with pytest.raises(discord.NotFound):
        await harness.bot.get_partial_messageable(1).send("nowhere")


async def test_misspelt_option_is_caught_before_dispatch(harness: DiscordHarness) -> None:
    with pytest.raises(ValueError, match=r"unknown options \['limt'\], missing required \['limit'\]"):
        harness.slash_command("credits", {"limt": 5}, subcommand="set-limit")
    admin = make_member(permissions=DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD)  # checks run before parsing
    payload = harness.slash_command("credits", {"limt": 5}, subcommand="set-limit", user=admin, validate=False)
    harness.dispatch(payload)
    assert isinstance(await harness.wait_for_error(), app_commands.CommandSignatureMismatch)


# -- what the fake enforces, each shown failing ----------------------------------------------------------


class ManualClock:
    """The fake's clock, moved by hand: tokens expire without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def raw(harness: DiscordHarness, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    """A request straight to the fake, as a misbehaving client would send it."""
    headers = {"Authorization": f"Bot {harness.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, harness.api.api_base + path, headers=headers, **kwargs) as response,
    ):
        return response.status, await response.json() if response.status != 204 else None


def registered(harness: DiscordHarness, **options: Any) -> dict[str, Any]:
    payload = harness.slash_command("remove-background", {"image": make_attachment()}, **options)
    harness.api.register_interaction(payload)
    return payload


def callback_path(payload: dict[str, Any]) -> str:
    return f"/interactions/{payload['id']}/{payload['token']}/callback"


async def test_acknowledging_after_three_seconds_finds_the_interaction_gone() -> None:
    clock = ManualClock()
    async with DiscordHarness(TinyBot(), clock=clock) as harness:
        payload = registered(harness)
        clock.now += 3.5
        assert await raw(harness, "POST", callback_path(payload), json={"type": 5}) == (
            404,
            {"message": "Unknown interaction", "code": 10062},
        )
        in_time = registered(harness)
        clock.now += 2.9
        assert (await raw(harness, "POST", callback_path(in_time), json={"type": 5}))[0] == 204


async def test_a_second_acknowledgement_is_refused(harness: DiscordHarness) -> None:
    payload = registered(harness)
    assert (await raw(harness, "POST", callback_path(payload), json={"type": 5}))[0] == 204
    assert await raw(harness, "POST", callback_path(payload), json={"type": 4, "data": {"content": "again"}}) == (
        400,
        {"message": "Interaction has already been acknowledged.", "code": 40060},
    )


async def test_webhook_token_expires_after_fifteen_minutes() -> None:
    clock = ManualClock()
    async with DiscordHarness(TinyBot(), clock=clock) as harness:
        payload = registered(harness)
        original = f"/webhooks/{harness.application_id}/{payload['token']}/messages/@original"
        assert (await raw(harness, "POST", callback_path(payload), json={"type": 5}))[0] == 204
        clock.now += 14 * 60
        assert (await raw(harness, "PATCH", original, json={"content": "still fine"}))[0] == 200
        clock.now += 2 * 60
        assert await raw(harness, "PATCH", original, json={"content": "too late"}) == (
            401,
            {"message": "Invalid Webhook Token", "code": 50027},
        )
        followup = f"/webhooks/{harness.application_id}/{payload['token']}"
        assert (await raw(harness, "POST", followup, json={"content": "too late"}))[0] == 401


async def test_uploads_over_the_interactions_limit_are_too_large(harness: DiscordHarness) -> None:
    payload = registered(harness, attachment_size_limit=1000)
    assert (await raw(harness, "POST", callback_path(payload), json={"type": 5}))[0] == 204
    form = aiohttp.FormData()
    form.add_field("payload_json", '{"attachments": [{"id": 0, "filename": "a.png"}, {"id": 1, "filename": "b.png"}]}')
    form.add_field("files[0]", b"x" * 600, filename="a.png")  # each part fits, together they do not
    form.add_field("files[1]", b"x" * 600, filename="b.png")
    original = f"/webhooks/{harness.application_id}/{payload['token']}/messages/@original"
    assert await raw(harness, "PATCH", original, data=form) == (
        413,
        {"message": "Request entity too large", "code": 40005},
    )


async def test_channel_posts_are_limited_to_ten_mebibytes(harness: DiscordHarness) -> None:
    channel = harness.bot.get_partial_messageable(harness.channel_id)
    with pytest.raises(discord.HTTPException) as refused:
        await channel.send(file=discord.File(io.BytesIO(bytes(ATTACHMENT_SIZE_LIMIT + 1)), "big.bin"))
    assert (refused.value.status, refused.value.code) == (413, 40005)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": 4, "data": {"content": "x" * 2001}}, ["data", "content"]),
        ({"type": 99}, ["type"]),
    ],
)
async def test_a_body_the_spec_forbids_is_refused_and_recorded(
    harness: DiscordHarness, body: dict[str, Any], field: list[str]
) -> None:
    payload = registered(harness)
    status, answer = await raw(harness, "POST", callback_path(payload), json=body)
    assert (status, answer["code"], answer["message"]) == (400, 50035, "Invalid Form Body")
    node = answer["errors"]
    for key in field:
        node = node[key]
    assert node["_errors"]
    assert harness.api.interactions[int(payload["id"])].response_type is None  # nothing happened
    [violation] = harness.api.violations
    assert violation.startswith(f"POST {callback_path(payload)}: {'/'.join(field)}: ")
    with pytest.raises(AssertionError, match="off-contract traffic"):
        await harness.api.close()
    harness.api.violations.clear()


async def test_a_route_discord_does_not_have_is_a_violation(harness: DiscordHarness) -> None:
    status, answer = await raw(harness, "POST", f"/channels/{harness.channel_id}/typo")
    assert (status, answer["code"]) == (400, 50035)
    assert harness.api.violations == [
        f"POST /channels/{harness.channel_id}/typo: <body>: POST /channels/{harness.channel_id}/typo is not in the API"
    ]
    harness.api.violations.clear()


async def test_the_fakes_answers_validate_against_the_spec(harness: DiscordHarness) -> None:
    await harness.run(harness.slash_command("remove-background", {"image": make_attachment()}))
    posted = await harness.bot.get_partial_messageable(harness.channel_id).send("hi")
    await harness.bot.get_partial_messageable(harness.channel_id).fetch_message(posted.id)
    answered = [r for r in harness.requests if r.response is not None]
    assert {r.path.split("/")[1] for r in answered} >= {"users", "oauth2", "interactions", "webhooks", "channels"}
    for request in answered:
        found = contract().operation(request.method, request.path)
        assert found is not None
        assert contract().response_errors(found[0], request.status, request.response) == [], request
    assert harness.api.violations == []


def test_the_contract_catches_a_wrong_answer() -> None:
    op, _ = contract().operation("GET", "/users/@me") or (None, None)
    assert op is not None
    assert contract().response_errors(op, 200, {"id": "1", "username": "x"})  # missing required fields
    assert contract().response_errors(op, 404, {"message": "Unknown User"}) == ["<body>: 'code' is a required property"]


# -- server emoji and stickers: the body against the spec, Discord's own rules in the handler --------------------


def square_png(side: int, *, padding: int = 0) -> bytes:
    """A real PNG; `padding` bytes of text chunk make it as large as a test needs without changing its pixels."""
    info = PngImagePlugin.PngInfo()
    if padding:
        info.add_text("padding", "x" * padding)
    out = io.BytesIO()
    Image.new("RGBA", (side, side), (10, 200, 10, 255)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


async def create_emoji(harness: DiscordHarness, name: str, image: bytes) -> Any:
    return await harness.bot.http.create_custom_emoji(
        harness.guild_id, name, discord.utils._bytes_to_base64_data(image)
    )


async def create_sticker(harness: DiscordHarness, name: str, image: bytes, tags: str = "scissors") -> Any:
    file = discord.File(io.BytesIO(image), filename="sticker.png")
    payload = {"name": name, "description": "", "tags": tags}
    return await harness.bot.http.create_guild_sticker(harness.guild_id, payload, file, None)


async def test_an_emoji_within_discords_rules_is_created_and_answered_as_the_spec_says(harness: DiscordHarness) -> None:
    answer = await create_emoji(harness, "green_1", square_png(128))
    [emoji] = harness.api.emojis
    assert (emoji.guild_id, emoji.name, emoji.data) == (harness.guild_id, "green_1", square_png(128))
    assert answer["id"] == str(emoji.id)
    assert harness.api.violations == []


async def test_an_emoji_name_discord_forbids_is_refused_and_recorded(harness: DiscordHarness) -> None:
    with pytest.raises(discord.HTTPException) as refused:
        await create_emoji(harness, "no-dashes", square_png(128))
    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert harness.api.emojis == []
    assert harness.api.violations == [
        "POST /guilds/{guild_id}/emojis: name: Must be 2-32 letters, digits or underscores."
    ]
    harness.api.violations.clear()


async def test_what_discord_refuses_at_run_time_is_answered_not_recorded(harness: DiscordHarness) -> None:
    """Sizes, full slots and a missing permission are Discord's answers to handle, not the bot's mistakes."""
    with pytest.raises(discord.HTTPException) as too_big:
        await create_emoji(harness, "big", square_png(128, padding=300 * 1024))
    harness.api.emoji_slots[harness.guild_id] = 0
    with pytest.raises(discord.HTTPException) as no_slots:
        await create_emoji(harness, "small", square_png(128))
    harness.api.bot_guild_permissions[harness.guild_id] = DEFAULT_MEMBER_PERMISSIONS
    with pytest.raises(discord.Forbidden) as forbidden:
        await create_sticker(harness, "small", square_png(320))
    assert [(e.value.status, e.value.code) for e in (too_big, no_slots, forbidden)] == [
        (400, 50138),
        (400, 30008),
        (403, 50013),
    ]
    assert harness.api.emojis == [] and harness.api.stickers == []
    assert harness.api.violations == []


async def test_a_sticker_must_be_a_320_square_within_512_kib(harness: DiscordHarness) -> None:
    answer = await create_sticker(harness, "leaf", square_png(320))
    assert [(s.name, s.tags) for s in harness.api.stickers] == [("leaf", "scissors")]
    assert answer["format_type"] == 1
    with pytest.raises(discord.HTTPException) as too_big:
        await create_sticker(harness, "leaf", square_png(320, padding=600 * 1024))
    assert (too_big.value.status, too_big.value.code) == (400, 50045)
    assert harness.api.violations == []
    with pytest.raises(discord.HTTPException) as not_square:
        await create_sticker(harness, "leaf", square_png(128))
    assert not_square.value.code == 50035
    assert harness.api.violations == ["POST /guilds/{guild_id}/stickers: file: Stickers must be exactly 320x320."]
    harness.api.violations.clear()


async def test_a_sticker_without_tags_breaks_the_spec(harness: DiscordHarness) -> None:
    with pytest.raises(discord.HTTPException):
        await create_sticker(harness, "leaf", square_png(320), tags="")
    [violation] = harness.api.violations
    assert violation.startswith("POST /guilds/") and "tags" in violation
    harness.api.violations.clear()
