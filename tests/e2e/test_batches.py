"""Several images in one request, driven through discord.py's real INTERACTION_CREATE dispatch.

The strict fake Discord refuses a message with more than 10 files or more bytes than the upload limit, and
checks every request against Discord's OpenAPI description; the fake Magic Hour checks its side.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.ledger import JobStatus
from tests.e2e.conftest import BotWorld, bot_world
from tests.fakes.discord_api import EPHEMERAL, RecordedRequest
from tests.fakes.interactions import make_attachment, make_member, make_user
from tests.fakes.magic_hour import FakeMagicHour

CREATE = "/v1/image-background-remover"
SHOES = ["shoe.png", "boot.jpg", "sandal.png", "heel.webp", "clog.png"]
TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}


def attachment(filename: str) -> Any:
    return make_attachment(filename, content_type=TYPES[filename.rsplit(".", 1)[1]])


def creates(mh: FakeMagicHour) -> list[Any]:
    return [r for r in mh.requests if r.method == "POST" and r.path == CREATE]


def last_edit(world: BotWorld, token: str) -> RecordedRequest:
    edits = world.discord.original_edits(token)
    assert edits, "the bot never edited its reply"
    return edits[-1]


def input_name(create: Any) -> str:
    return create.json["assets"]["image_file_path"].split("?")[0].rsplit("/", 1)[1]


async def slash(world: BotWorld, options: dict[str, Any], *, timeout: float = 15, **kw: Any) -> tuple[int, str]:
    payload = world.discord.slash_command("remove-background", options, **kw)
    interaction_id = world.discord.dispatch(payload)
    await world.discord.finished(interaction_id, timeout=timeout)
    await world.discord.finished(timeout=timeout)
    return interaction_id, payload["token"]


async def test_a_five_image_message_is_one_request_with_every_result_in_one_reply(world: BotWorld) -> None:
    message = world.discord.add_message(content="new stock", attachments=[attachment(name) for name in SHOES])
    payload = world.discord.message_context_menu("Remove background", message)
    interaction_id = world.discord.dispatch(payload)
    await world.discord.finished(interaction_id, timeout=15)
    await world.discord.finished(timeout=15)

    assert sorted(input_name(c) for c in creates(world.mh)) == sorted(SHOES)
    final = last_edit(world, payload["token"])
    assert [f.filename for f in final.files] == [
        "shoe-no-background.png",
        "boot-no-background.png",
        "sandal-no-background.png",
        "heel-no-background.png",
        "clog-no-background.png",
    ]
    assert all(f.data == world.mh.output_bytes for f in final.files)
    content = final.json["content"]
    assert "from 5 of 5 images" in content and "25 credits in total" in content
    assert "used 25 of 100 credits this month" in content
    assert world.discord.followups(payload["token"]) == []

    jobs = [await world.bot.ledger.get_job(interaction_id, position) for position in range(5)]
    assert all(job is not None and job.status is JobStatus.COMPLETE and job.delivered for job in jobs)
    assert len({job.request_id for job in jobs if job is not None}) == 1
    names = sorted(c.json["name"] for c in creates(world.mh))
    assert names[0].endswith(f"#{interaction_id}") and names[1].endswith(f"#{interaction_id}/1")


async def test_four_images_with_a_background_each_get_it(world: BotWorld) -> None:
    options = {
        "image": attachment("a.png"),
        "image2": attachment("b.png"),
        "image3": attachment("c.jpg"),
        "image4": attachment("d.png"),
        "background": attachment("beach.webp"),
    }
    _, token = await slash(world, options)
    sent = creates(world.mh)
    assert sorted(input_name(c) for c in sent) == ["a.png", "b.png", "c.jpg", "d.png"]
    assert all(c.json["assets"]["background_image_file_path"].split("?")[0].endswith("/beach.webp") for c in sent)
    final = last_edit(world, token)
    assert [f.filename for f in final.files] == [f"{n}-no-background.png" for n in "abcd"]
    assert "20 credits in total" in final.json["content"]


async def test_one_of_four_failing_is_listed_with_its_reason_and_not_charged(world: BotWorld) -> None:
    world.mh.script("complete")
    world.mh.script("error", code="no_subject", message="No subject detected in the image")
    world.mh.script("complete", times=2)
    options = {f"image{n}" if n > 1 else "image": attachment(f"p{n}.png") for n in range(1, 5)}
    interaction_id, token = await slash(world, options)

    [failed_job] = [job for job in world.mh.jobs.values() if job.final_status == "error"]
    failed_input = failed_job.assets["image_file_path"].split("?")[0].rsplit("/", 1)[1]
    final = last_edit(world, token)
    content = final.json["content"]
    assert "from 3 of 4 images" in content and "15 credits in total" in content
    assert f"`{failed_input}`: Magic Hour couldn't process it: No subject detected in the image" in content
    assert sorted(f.filename for f in final.files) == sorted(
        f"p{n}-no-background.png" for n in range(1, 5) if f"p{n}.png" != failed_input
    )
    jobs = [await world.bot.ledger.get_job(interaction_id, position) for position in range(4)]
    statuses = sorted(job.status for job in jobs if job is not None)
    assert statuses == sorted([JobStatus.COMPLETE] * 3 + [JobStatus.FAILED])
    assert (await world.bot.ledger.usage(world.discord.guild_id)).total == 15


async def test_a_request_over_the_limit_is_refused_whole_before_magic_hour(tmp_path: Path, mh: FakeMagicHour) -> None:
    async with bot_world(tmp_path, mh, DEFAULT_GUILD_CREDIT_LIMIT="20") as world:
        await slash(world, {"image": attachment("first.png")})
        options = {f"image{n}" if n > 1 else "image": attachment(f"p{n}.png") for n in range(1, 5)}
        interaction_id, token = await slash(world, options)
        [refusal] = world.discord.followups(token)
        assert refusal.json["flags"] & EPHEMERAL
        text = refusal.json["content"]
        assert "request of 4 images needs 20 credits" in text and "only 15 of 20 left this month" in text
        assert "resets <t:" in text
        assert len(creates(mh)) == 1
        assert await world.bot.ledger.get_job(interaction_id) is None
        assert (await world.bot.ledger.usage(world.discord.guild_id)).total == 5


async def test_one_bad_attachment_refuses_the_request_naming_it(world: BotWorld) -> None:
    options = {"image": attachment("ok.png"), "image2": make_attachment("notes.txt", content_type="text/plain")}
    interaction_id, _ = await slash(world, options)
    [callback] = world.discord.callbacks(interaction_id)
    assert callback.json["data"]["flags"] & EPHEMERAL
    assert "`notes.txt` has .txt" in callback.json["data"]["content"]
    assert creates(world.mh) == []
    assert await world.bot.ledger.get_job(interaction_id) is None


async def test_results_beyond_one_messages_upload_limit_follow_in_further_messages(world: BotWorld) -> None:
    world.mh.output_bytes = b"\x89PNG\r\n\x1a\n" + b"\0" * 3000  # two fit under the 8000-byte limit, three don't
    message = world.discord.add_message(attachments=[attachment(name) for name in SHOES])
    payload = world.discord.message_context_menu("Remove background", message, attachment_size_limit=8000)
    interaction_id = world.discord.dispatch(payload)
    await world.discord.finished(interaction_id, timeout=15)
    await world.discord.finished(timeout=15)

    token = payload["token"]
    final = last_edit(world, token)
    followups = world.discord.followups(token)
    carried = [f.filename for f in final.files] + [f.filename for m in followups for f in m.files]
    assert carried == [f"{name.rsplit('.', 1)[0]}-no-background.png" for name in SHOES]
    assert [len(final.files)] + [len(m.files) for m in followups] == [2, 2, 1]
    assert "2 more messages with the images follow" in final.json["content"]
    assert world.discord.api.violations == []
    jobs = [await world.bot.ledger.get_job(interaction_id, position) for position in range(5)]
    assert all(job is not None and job.delivered for job in jobs)


async def test_private_keeps_the_whole_exchange_ephemeral(world: BotWorld) -> None:
    world.mh.output_bytes = b"\x89PNG\r\n\x1a\n" + b"\0" * 3000
    options = {"image": attachment("me.png"), "image2": attachment("you.png"), "image3": attachment("us.png")}
    payload = world.discord.slash_command("remove-background", {**options, "private": True}, attachment_size_limit=8000)
    interaction_id = world.discord.dispatch(payload)
    await world.discord.finished(interaction_id, timeout=15)
    await world.discord.finished(timeout=15)
    [callback] = world.discord.callbacks(interaction_id)
    assert callback.json["type"] == 5 and callback.json["data"]["flags"] & EPHEMERAL
    followups = world.discord.followups(payload["token"])
    assert followups and all(m.json["flags"] & EPHEMERAL for m in followups)
    assert world.discord.channel_messages(world.discord.channel_id) == []
    request_id = (await world.bot.ledger.get_job(interaction_id)).request_id
    assert (await world.bot.ledger.get_request(request_id)).private


async def test_cancel_while_queued_cancels_the_whole_request(tmp_path: Path, mh: FakeMagicHour) -> None:
    mh.job_duration = 1.5
    async with bot_world(tmp_path, mh, MAX_CONCURRENT_JOBS="1") as world:
        alice, bob = make_member(make_user("alice")), make_member(make_user("bob"))
        running = world.discord.slash_command("remove-background", {"image": attachment("a.png")}, user=alice)
        batch = world.discord.slash_command(
            "remove-background", {"image": attachment("b.png"), "image2": attachment("c.png")}, user=bob
        )
        world.discord.dispatch(running)
        await world.discord.wait_for(lambda _: len(creates(mh)) == 1, timeout=5)
        batch_id = world.discord.dispatch(batch)
        await world.discord.wait_for(
            lambda _: any(
                "Cancel" in str(e.json.get("components")) for e in world.discord.original_edits(batch["token"])
            ),
            timeout=5,
        )
        edit = next(e for e in world.discord.original_edits(batch["token"]) if e.json.get("components"))
        button = edit.json["components"][0]["components"][0]
        await asyncio.sleep(0.2)  # discord.py registers the view once it has read the edit's answer
        click = world.discord.button_click(button["custom_id"], message_id=int(edit.response["id"]), user=bob)
        await world.discord.run(click)
        await world.discord.finished(batch_id, timeout=5)
        assert "Cancelled. Nothing was charged." in last_edit(world, batch["token"]).json["content"]
        jobs = [await world.bot.ledger.get_job(batch_id, position) for position in range(2)]
        assert [job.status for job in jobs if job is not None] == [JobStatus.REFUNDED] * 2
        await world.discord.finished(timeout=10)
        assert len(creates(mh)) == 1


async def test_images_past_the_deadline_follow_one_by_one_when_they_end(tmp_path: Path, mh: FakeMagicHour) -> None:
    mh.job_duration = 2.0
    async with bot_world(tmp_path, mh, JOB_DEADLINE_SECONDS="0.5") as world:
        options = {"image": attachment("slow1.png"), "image2": attachment("slow2.png")}
        payload = world.discord.slash_command("remove-background", options)
        interaction_id = world.discord.dispatch(payload)
        token = payload["token"]
        await world.discord.wait_for(lambda _: len([m for m in world.discord.followups(token) if m.files]) == 2, 15)
        final = last_edit(world, token)
        assert "take longer than usual" in final.json["content"] and final.files == []
        late = sorted(f.filename for m in world.discord.followups(token) for f in m.files)
        assert late == ["slow1-no-background.png", "slow2-no-background.png"]
        await world.discord.finished(timeout=10)
        for position in range(2):
            async with asyncio.timeout(5):
                while not (job := await world.bot.ledger.get_job(interaction_id, position)).delivered:
                    await asyncio.sleep(0.05)
            assert job.status is JobStatus.COMPLETE


async def test_a_request_over_the_member_limit_is_refused_whole_naming_what_is_left(world: BotWorld) -> None:
    await world.bot.ledger.set_member_limit(world.discord.guild_id, 10)
    options = {f"image{n}" if n > 1 else "image": attachment(f"p{n}.png") for n in range(1, 4)}
    interaction_id, token = await slash(world, options)
    [refusal] = world.discord.followups(token)
    assert refusal.json["flags"] & EPHEMERAL
    text = refusal.json["content"]
    assert "request of 3 images needs 15 credits, but you have only 10 of 10 left this month" in text
    assert creates(world.mh) == []
    assert await world.bot.ledger.get_job(interaction_id) is None


async def test_a_request_over_the_bot_wide_budget_shows_no_figures_of_other_servers(
    tmp_path: Path, mh: FakeMagicHour
) -> None:
    async with bot_world(tmp_path, mh, BOT_CREDIT_BUDGET="10") as world:
        options = {f"image{n}" if n > 1 else "image": attachment(f"p{n}.png") for n in range(1, 4)}
        _, token = await slash(world, options)
        [refusal] = world.discord.followups(token)
        text = refusal.json["content"]
        assert "needs 15 credits, more than the bot's credit budget has left this month" in text
        assert "10" not in text.split("<t:")[0]
        assert creates(mh) == []


async def test_a_failing_file_name_with_backticks_cannot_break_the_messages_markdown(world: BotWorld) -> None:
    world.mh.script("error", code="no_subject", message="No subject detected in the image", times=2)
    evil = "x`** @everyone `y.png"
    options = {"image": attachment("fine.png"), "image2": attachment(evil)}
    _, token = await slash(world, options)

    content = last_edit(world, token).json["content"]
    [line] = [line for line in content.splitlines() if line.startswith("❌") and "y.png" in line]
    assert line.count("`") == 2  # one code span, opened and closed: the name cannot end it early
    assert "xˋ** @everyone ˋy.png" in line
