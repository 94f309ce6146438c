"""Members read the bot in their own language, through discord.py's real dispatch: the synced commands carry every
catalog's localizations within Discord's limits, and replies follow `interaction.locale` (alerts, the server's).

Each expected sentence is taken from the catalog and compared with what the bot sent, and also checked to differ from
the English: an entry left untranslated fails here as well as in the catalog tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.i18n import CATALOGS, ENGLISH, words_for
from bot.ledger import COST_PER_JOB
from tests.e2e.conftest import BotWorld, bot_world
from tests.e2e.test_credits import ADMIN_PERMISSIONS, admin, ephemeral_reply, set_alert_channel
from tests.fakes.interactions import make_attachment, snowflake
from tests.fakes.magic_hour import FakeMagicHour

DESCRIPTION_MAX, MENU_NAME_MAX, CHOICE_NAME_MAX = 100, 32, 100


def command_puts(world: BotWorld) -> list[Any]:
    return [r for r in world.discord.requests if r.method == "PUT" and r.path.endswith("/commands")]


def translated(code: str, message: str, **values: Any) -> str:
    text = words_for(code).gettext(message, **values)
    assert text != ENGLISH.gettext(message, **values), f"{code} has no translation of {message!r}"
    return text


async def test_the_synced_commands_carry_every_catalogs_localizations_within_discords_limits(
    tmp_path: Path, mh: FakeMagicHour
) -> None:
    async with bot_world(tmp_path, mh, USER_INSTALL_CREDIT_LIMIT="20") as world:
        [put] = command_puts(world)  # the fake Discord validated this body against Discord's OpenAPI file
        commands = {c["name"]: c for c in put.json}
        for name in ("Remove background", "Remove avatar background"):
            names = commands[name]["name_localizations"]
            assert set(names) == set(CATALOGS)
            assert all(1 <= len(text) <= MENU_NAME_MAX for text in names.values()), names

        def walk(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
            found = []
            for option in options:
                found.append(option)
                found.extend(walk(option.get("options", [])))
            return found

        for command in put.json:
            if command.get("type", 1) == 1:
                described = [command, *walk(command.get("options", []))]
                for item in described:
                    localized = item.get("description_localizations") or {}
                    assert set(localized) == set(CATALOGS), item["name"]
                    assert all(1 <= len(text) <= DESCRIPTION_MAX for text in localized.values()), item["name"]
                    assert item.get("name_localizations") in (None, {}), "typed names stay English"
                    for choice in item.get("choices", []):
                        if choice["name"] in ("day", "week", "month", "none"):
                            assert set(choice["name_localizations"]) == set(CATALOGS)
                            texts = choice["name_localizations"].values()
                            assert all(1 <= len(text) <= CHOICE_NAME_MAX for text in texts)
        usage = next(o for o in commands["credits"]["options"] if o["name"] == "usage")
        assert usage["description_localizations"]["ja"] == translated(
            "ja", "How many credits this server and you have used"
        )


async def test_a_japanese_member_gets_the_result_in_japanese(world: BotWorld) -> None:
    payload = world.discord.slash_command("remove-background", {"image": make_attachment("cat.png")}, locale="ja")
    await world.discord.run(payload, timeout=10)
    [final] = [edit for edit in world.discord.original_edits(payload["token"]) if edit.files]
    w = words_for("ja")
    cost = w.ngettext("{n} credit", "{n} credits", COST_PER_JOB)
    assert final.json["content"].startswith(translated("ja", "✅ Background removed. It cost {cost}.", cost=cost))


async def test_a_polish_member_is_refused_in_polish_with_the_right_plural_forms(world: BotWorld) -> None:
    await admin(world, "set-limit", {"credits": 8})
    options = {"image": make_attachment("a.png"), "image2": make_attachment("b.png")}
    payload = world.discord.slash_command("remove-background", options, locale="pl")
    await world.discord.run(payload, timeout=10)
    [refusal] = world.discord.followups(payload["token"])
    w = words_for("pl")
    ten = w.ngettext("{n} credit", "{n} credits", 10)  # "10 kredytów": the many form
    assert ten != w.ngettext("{n} credit", "{n} credits", 2)  # "2 kredyty": few differs from many
    text = refusal.json["content"]
    assert ten in text and text.startswith("🚫 ")
    assert not text.startswith("🚫 This request")  # not the English sentence
    assert not [r for r in world.mh.requests if r.method == "POST"]


async def test_a_german_member_is_told_in_german_what_is_wrong_with_a_file(world: BotWorld) -> None:
    payload = world.discord.slash_command(
        "remove-background", {"image": make_attachment("leer.png", size=0)}, locale="de"
    )
    interaction_id = await world.discord.run(payload)
    [callback] = world.discord.callbacks(interaction_id)
    text = callback.json["data"]["content"]
    label = words_for("de").gettext("The image {name}", name="`leer.png`")
    assert translated("de", "{label} is empty.", label=label) in text
    assert world.mh.requests == []


async def test_a_french_admin_reads_credits_usage_in_french(world: BotWorld) -> None:
    payload = world.discord.slash_command("credits", {}, subcommand="usage", permissions=ADMIN_PERMISSIONS, locale="fr")
    interaction_id = await world.discord.run(payload)
    text = ephemeral_reply(world, interaction_id)[0]
    period = words_for("fr").pgettext("period", "this month")
    assert period != "this month"
    w = words_for("fr")
    first = w.ngettext(
        "This server has used {used} of {limit} credit {period}.",
        "This server has used {used} of {limit} credits {period}.",
        100,
        used="0",
        limit="100",
        period=period,
    )
    assert text.startswith(first) and not text.startswith("This server")


async def test_a_member_in_a_language_without_a_catalog_reads_english(world: BotWorld) -> None:
    payload = world.discord.slash_command("remove-background", {"image": make_attachment("cat.png")}, locale="hu")
    await world.discord.run(payload, timeout=10)
    [final] = [edit for edit in world.discord.original_edits(payload["token"]) if edit.files]
    assert final.json["content"].startswith("✅ Background removed. It cost 5 credits.")


async def test_the_alerts_channel_reads_the_servers_language_whoever_triggered_it(
    tmp_path: Path, mh: FakeMagicHour
) -> None:
    async with bot_world(tmp_path, mh) as world:
        alert_channel = snowflake()
        await admin(world, "set-limit", {"credits": 5})
        await set_alert_channel(world, alert_channel)
        payload = world.discord.slash_command("remove-background", {"image": make_attachment()}, locale="ja")
        payload["guild_locale"] = payload["guild"]["locale"] = "de"  # a German server, a Japanese member
        await world.discord.run(payload, timeout=10)
        alert = next(r.json["content"] for r in world.discord.channel_messages(alert_channel))  # 80 %, then 100 %
        percent = words_for("de").number(80)
        reached = translated("de", "📈 This server has reached {percent}% of its credit limit.", percent=percent)
        assert alert.startswith(reached)
