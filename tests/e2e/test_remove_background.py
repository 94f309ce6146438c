"""/remove-background and the "Remove background" menu, driven the way Discord drives them.

Every test feeds a real INTERACTION_CREATE payload to discord.py and asserts on what the bot really
sent: to the fake Discord (callbacks, edits, multipart uploads) and to the fake Magic Hour (which
checks each request against the OpenAPI description), and on the real SQLite ledger.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.ledger import JobStatus
from tests.e2e.conftest import MH_TOKEN, BotWorld, bot_world
from tests.fakes.discord_api import EPHEMERAL, RecordedRequest
from tests.fakes.interactions import make_attachment, make_member, make_user, png_bytes
from tests.fakes.magic_hour import FakeMagicHour

CREATE = "/v1/image-background-remover"


async def run_command(world: BotWorld, options: dict[str, Any], *, timeout: float = 10, **kw: Any) -> tuple[int, str]:
    payload = world.discord.slash_command("remove-background", options, **kw)
    interaction_id = world.discord.dispatch(payload)
    await world.discord.finished(interaction_id, timeout=timeout)
    return interaction_id, payload["token"]


def creates(mh: FakeMagicHour) -> list[Any]:
    return [r for r in mh.requests if r.method == "POST" and r.path == CREATE]


def last_edit(world: BotWorld, token: str) -> RecordedRequest:
    edits = world.discord.original_edits(token)
    assert edits, "the bot never edited its reply"
    return edits[-1]


def ephemeral_refusal(world: BotWorld, interaction_id: int) -> str:
    """The text of a refusal sent as the first, ephemeral answer; it must be the only answer."""
    callbacks = world.discord.callbacks(interaction_id)
    assert len(callbacks) == 1
    body = callbacks[0].json
    assert body["type"] == 4
    assert body["data"]["flags"] & EPHEMERAL
    return body["data"]["content"]


# -- the happy paths ---------------------------------------------------------------------------------


async def test_result_is_posted_with_the_png_and_the_credits(world: BotWorld) -> None:
    image = make_attachment("cat.jpg", content_type="image/jpeg", size=50_000)
    interaction_id, token = await run_command(world, {"image": image})

    callbacks = world.discord.callbacks(interaction_id)
    assert [c.json["type"] for c in callbacks] == [5]  # deferred at once, publicly
    assert not callbacks[0].json.get("data", {}).get("flags", 0) & EPHEMERAL

    sent = creates(world.mh)
    assert len(sent) == 1
    resolved = next(iter(world.discord.api.interactions.values())).payload["data"]["resolved"]["attachments"]
    cdn_url = next(iter(resolved.values()))["url"]
    assert sent[0].json["assets"] == {"image_file_path": cdn_url}  # the signed CDN URL, untouched
    assert "?ex=" in cdn_url

    final = last_edit(world, token)
    assert [f.filename for f in final.files] == ["cat-no-background.png"]
    assert final.files[0].data == world.mh.output_bytes
    assert "5 credits" in final.json["content"]
    assert "used 5 of 100 credits this month" in final.json["content"]

    job = await world.bot.ledger.get_job(interaction_id)
    assert job is not None
    assert job.status is JobStatus.COMPLETE
    assert job.credits_charged == 5
    assert job.project_id == next(iter(world.mh.jobs))


async def test_background_image_and_name_are_sent(world: BotWorld) -> None:
    subject = make_attachment("me.png")
    backdrop = make_attachment("beach.webp", content_type="image/webp")
    await run_command(world, {"image": subject, "background": backdrop, "name": "holiday card"})
    body = creates(world.mh)[0].json
    assert set(body["assets"]) == {"image_file_path", "background_image_file_path"}
    assert body["assets"]["background_image_file_path"].split("?")[0].endswith("/beach.webp")
    assert body["assets"]["image_file_path"].split("?")[0].endswith("/me.png")
    assert body["name"].startswith("holiday card #")


async def test_default_job_name_names_the_server_and_interaction(world: BotWorld) -> None:
    interaction_id, _ = await run_command(world, {"image": make_attachment()})
    name = creates(world.mh)[0].json["name"]
    assert str(interaction_id) in name
    assert str(world.discord.guild_id) in name


async def test_progress_is_shown_while_magic_hour_works(tmp_path: Path, mh: FakeMagicHour) -> None:
    mh.job_duration = 2.5
    mh.queue_fraction = 0.2
    async with bot_world(tmp_path, mh) as world:
        _, token = await run_command(world, {"image": make_attachment()})
        contents = [e.json["content"] for e in world.discord.original_edits(token)]
    assert any("Removing the background" in c for c in contents[:-1])
    assert contents[-1].startswith("✅ Background removed")
    # Throttled: one edit per status change at most, never a storm of edits.
    assert len(contents) <= 4


async def test_large_results_are_linked_instead_of_uploaded(world: BotWorld) -> None:
    world.mh.output_bytes = b"\x89PNG\r\n\x1a\n" + b"\0" * 5000
    _, token = await run_command(world, {"image": make_attachment()}, attachment_size_limit=4096)
    final = last_edit(world, token)
    assert final.files == []
    content = final.json["content"]
    assert "too large to upload here" in content
    assert world.mh.base_url + "/outputs/" in content
    assert "expires <t:" in content


async def test_context_menu_skips_attachments_that_are_not_images(world: BotWorld) -> None:
    message = world.discord.add_message(
        content="look",
        attachments=[make_attachment("notes.txt", content_type="text/plain"), make_attachment("dog.png")],
    )
    payload = world.discord.message_context_menu("Remove background", message)
    interaction_id = world.discord.dispatch(payload)
    await world.discord.finished(interaction_id, timeout=10)
    sent = creates(world.mh)
    assert len(sent) == 1
    assert sent[0].json["assets"]["image_file_path"].split("?")[0].endswith("/dog.png")
    assert [f.filename for f in last_edit(world, payload["token"]).files] == ["dog-no-background.png"]


async def test_context_menu_on_a_message_without_images_says_so(world: BotWorld) -> None:
    message = world.discord.add_message(content="just words")
    payload = world.discord.message_context_menu("Remove background", message)
    interaction_id = world.discord.dispatch(payload)
    await world.discord.finished(interaction_id)
    assert "no image attachment" in ephemeral_refusal(world, interaction_id)
    assert creates(world.mh) == []


# -- inputs refused before anything is charged -------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"image": make_attachment("anim.gif", content_type="image/gif")}, "has .gif"),
        ({"image": make_attachment("doc.pdf", content_type="application/pdf")}, "has .pdf"),
        ({"image": make_attachment("empty.png", size=0)}, "is empty"),
        ({"image": make_attachment("huge.png", size=25_000_000)}, "the limit is 20.0 MB"),
        ({"image": make_attachment("fake.png", content_type="text/html")}, "text/html, not an image"),
        (
            {"image": make_attachment("ok.png"), "background": make_attachment("bg.svg", content_type="image/svg+xml")},
            "The background `bg.svg` has .svg",
        ),
    ],
)
async def test_bad_inputs_are_refused_without_a_call(world: BotWorld, options: dict[str, Any], words: str) -> None:
    interaction_id, _ = await run_command(world, options)
    text = ephemeral_refusal(world, interaction_id)
    assert words in text
    assert "Nothing was charged" in text
    assert world.mh.requests == []
    assert await world.bot.ledger.get_job(interaction_id) is None


# -- failures, in plain words -------------------------------------------------------------------------


async def test_rejected_image_gives_magic_hours_reason_and_releases_the_credits(world: BotWorld) -> None:
    world.mh.fail_next("POST", CREATE, status=422, message="Image resolution too small")
    interaction_id, token = await run_command(world, {"image": make_attachment()})
    content = last_edit(world, token).json["content"]
    assert "Magic Hour rejected the image: Image resolution too small" in content
    assert len(creates(world.mh)) == 1
    job = await world.bot.ledger.get_job(interaction_id)
    assert job.status is JobStatus.REFUNDED
    assert (await world.bot.ledger.usage(world.discord.guild_id)).total == 0


async def test_failed_job_reports_its_message_and_keeps_no_credits(world: BotWorld) -> None:
    world.mh.script("error", code="no_subject", message="No subject detected in the image")
    interaction_id, token = await run_command(world, {"image": make_attachment()})
    content = last_edit(world, token).json["content"]
    assert "couldn't process this image: No subject detected in the image" in content
    assert "No credits were kept" in content
    job = await world.bot.ledger.get_job(interaction_id)
    assert job.status is JobStatus.FAILED
    assert job.credits_charged == 0


async def test_out_of_credits_at_magic_hour(world: BotWorld) -> None:
    world.mh.fail_next("POST", CREATE, status=402, message="Payment required")
    interaction_id, token = await run_command(world, {"image": make_attachment()})
    assert "out of credits" in last_edit(world, token).json["content"]
    assert (await world.bot.ledger.get_job(interaction_id)).status is JobStatus.REFUNDED


@pytest.mark.parametrize("status", [401, 403])
async def test_misconfiguration_tells_members_to_ask_the_owner_and_logs_details(
    world: BotWorld, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    message = "Unauthorized" if status == 401 else "Not available on your plan"
    world.mh.fail_next("POST", CREATE, status=status, message=message)
    with caplog.at_level(logging.INFO):
        _, token = await run_command(world, {"image": make_attachment()})
    content = last_edit(world, token).json["content"]
    assert "ask the bot owner" in content
    assert message not in content  # details stay in the log
    assert message in caplog.text
    assert MH_TOKEN not in caplog.text


async def test_busy_after_retries_charges_nothing(world: BotWorld) -> None:
    world.mh.fail_next("POST", CREATE, status=503, message="Overloaded", times=10)
    interaction_id, token = await run_command(world, {"image": make_attachment()}, timeout=20)
    assert "Magic Hour is busy" in last_edit(world, token).json["content"]
    assert len(creates(world.mh)) == 3  # the first try and MAGIC_HOUR_MAX_RETRIES=2 retries
    assert (await world.bot.ledger.get_job(interaction_id)).status is JobStatus.REFUNDED


async def test_ambiguous_create_is_not_resent_and_keeps_the_credits_counted(tmp_path: Path, mh: FakeMagicHour) -> None:
    mh.fail_next("POST", CREATE, delay=2.0, after_processing=True)
    async with bot_world(tmp_path, mh, MAGIC_HOUR_REQUEST_TIMEOUT="0.5") as world:
        interaction_id, token = await run_command(world, {"image": make_attachment()})
        assert "can't tell whether your job started" in last_edit(world, token).json["content"]
        assert len(creates(mh)) == 1
        job = await world.bot.ledger.get_job(interaction_id)
        assert job.status is JobStatus.HELD
        assert (await world.bot.ledger.usage(world.discord.guild_id)).total == 5


async def test_slow_job_is_announced_then_delivered(tmp_path: Path, mh: FakeMagicHour) -> None:
    mh.job_duration = 2.5
    async with bot_world(tmp_path, mh, JOB_DEADLINE_SECONDS="0.5") as world:
        payload = world.discord.slash_command("remove-background", {"image": make_attachment()})
        interaction_id = world.discord.dispatch(payload)
        token = payload["token"]
        await world.discord.wait_for(
            lambda _: any("longer than usual" in e.json["content"] for e in world.discord.original_edits(token)),
            timeout=10,
        )
        await world.discord.wait_for(
            lambda _: any(e.files for e in world.discord.original_edits(token)),
            timeout=15,
        )
        await asyncio.sleep(0.1)
        job = await world.bot.ledger.get_job(interaction_id)
        assert job.status is JobStatus.COMPLETE


async def test_stale_cdn_link_is_refreshed_through_discord_and_retried_once(world: BotWorld) -> None:
    world.discord.api.message_content_intent = False  # as for this bot: re-fetching the message shows no files
    message = world.discord.add_message(attachments=[make_attachment("old.png")])
    first_url = message["attachments"][0]["url"]
    world.mh.fetchable = lambda url: url != first_url
    world.discord.api.revoke_cdn_links()  # only freshly signed links work now
    payload = world.discord.message_context_menu("Remove background", message)
    payload["data"]["resolved"]["messages"][message["id"]]["attachments"][0]["url"] = first_url
    interaction_id = world.discord.dispatch(payload)
    await world.discord.finished(interaction_id, timeout=15)

    sent = creates(world.mh)
    assert len(sent) == 2
    assert sent[0].json["assets"]["image_file_path"] == first_url
    retried = sent[1].json["assets"]["image_file_path"]
    assert retried != first_url and retried.split("?")[0] == first_url.split("?")[0]
    [refresh] = world.discord.api.find("POST", r"^/attachments/refresh-urls$")
    assert refresh.json == {"attachment_urls": [first_url]}
    assert refresh.response["refreshed_urls"] == [{"original": first_url, "refreshed": retried}]
    assert last_edit(world, payload["token"]).files
    job = await world.bot.ledger.get_job(interaction_id)
    assert job.status is JobStatus.COMPLETE and job.credits_charged == 5


# -- limits on work in flight --------------------------------------------------------------------------


async def test_one_job_at_a_time_per_member(tmp_path: Path, mh: FakeMagicHour) -> None:
    mh.job_duration = 1.0
    async with bot_world(tmp_path, mh) as world:
        first = world.discord.slash_command("remove-background", {"image": make_attachment()})
        second = world.discord.slash_command("remove-background", {"image": make_attachment("b.png")})
        first_id = world.discord.dispatch(first)
        await world.discord.wait_for(lambda _: len(creates(mh)) == 1, timeout=5)
        second_id = world.discord.dispatch(second)
        await world.discord.finished(second_id)
        assert "already have a background removal running" in ephemeral_refusal(world, second_id)
        await world.discord.finished(first_id, timeout=10)
        assert len(creates(mh)) == 1
        assert await world.bot.ledger.get_job(second_id) is None


async def test_queue_shows_position_and_only_the_requester_can_cancel(tmp_path: Path, mh: FakeMagicHour) -> None:
    mh.job_duration = 1.5
    async with bot_world(tmp_path, mh, MAX_CONCURRENT_JOBS="1") as world:
        alice, bob, carol = (make_member(make_user(name)) for name in ("alice", "bob", "carol"))
        running = world.discord.slash_command("remove-background", {"image": make_attachment()}, user=alice)
        queued = world.discord.slash_command("remove-background", {"image": make_attachment()}, user=bob)
        world.discord.dispatch(running)
        await world.discord.wait_for(lambda _: len(creates(mh)) == 1, timeout=5)
        queued_id = world.discord.dispatch(queued)
        await world.discord.wait_for(
            lambda _: any(
                "number 1 in line" in e.json["content"] for e in world.discord.original_edits(queued["token"])
            ),
            timeout=5,
        )
        edit = next(e for e in world.discord.original_edits(queued["token"]) if "number 1 in line" in e.json["content"])
        button = edit.json["components"][0]["components"][0]
        assert button["label"] == "Cancel"
        message_id = int(edit.response["id"])
        await asyncio.sleep(0.2)  # discord.py registers the view once it has read the edit's answer

        intruder = world.discord.button_click(button["custom_id"], message_id=message_id, user=carol)
        intruder_id = world.discord.dispatch(intruder)
        await world.discord.finished(intruder_id)
        assert "Only the member who started this job" in ephemeral_refusal(world, intruder_id)

        click = world.discord.button_click(button["custom_id"], message_id=message_id, user=bob)
        await world.discord.run(click)
        await world.discord.finished(queued_id, timeout=5)
        assert "Cancelled. Nothing was charged." in last_edit(world, queued["token"]).json["content"]
        job = await world.bot.ledger.get_job(queued_id)
        assert job.status is JobStatus.REFUNDED
        await world.discord.finished(timeout=10)
        assert len(creates(mh)) == 1  # bob's job never reached Magic Hour


async def test_server_limit_refusal_is_private_and_makes_no_call(tmp_path: Path, mh: FakeMagicHour) -> None:
    async with bot_world(tmp_path, mh, DEFAULT_GUILD_CREDIT_LIMIT="5") as world:
        await run_command(world, {"image": make_attachment()})
        interaction_id, token = await run_command(world, {"image": make_attachment()})
        followups = world.discord.followups(token)
        assert len(followups) == 1
        assert followups[0].json["flags"] & EPHEMERAL
        text = followups[0].json["content"]
        assert "5 of 5 credits used this month" in text
        assert "resets <t:" in text
        assert any(
            r.method == "DELETE" and r.path.endswith(f"/{token}/messages/@original") for r in world.discord.requests
        )
        assert len(creates(mh)) == 1
        assert await world.bot.ledger.get_job(interaction_id) is None


async def test_a_burst_of_commands_is_acknowledged_and_all_finish(tmp_path: Path, mh: FakeMagicHour) -> None:
    async with bot_world(tmp_path, mh, MAX_CONCURRENT_JOBS="8", DEFAULT_GUILD_CREDIT_LIMIT="1000") as world:
        payloads = [
            world.discord.slash_command(
                "remove-background", {"image": make_attachment()}, user=make_member(make_user(f"m{i}"))
            )
            for i in range(40)
        ]
        ids = [world.discord.dispatch(p) for p in payloads]
        await world.discord.finished(timeout=30)
        assert all(world.discord.callbacks(i)[0].json["type"] == 5 for i in ids)
        assert all(last_edit(world, p["token"]).files for p in payloads)
        assert len(creates(mh)) == 40
        assert (await world.bot.ledger.usage(world.discord.guild_id)).used == 200


async def test_stale_slash_attachment_is_uploaded_through_magic_hours_upload_urls(
    tmp_path: Path, mh: FakeMagicHour
) -> None:
    picture = png_bytes(4, 3)
    async with bot_world(tmp_path, mh, harness={"local_cdn": True}) as world:
        cdn = world.discord.api.base_url
        mh.fetchable = lambda url: not url.startswith(cdn)  # Magic Hour can't reach this link any more
        interaction_id, token = await run_command(
            world, {"image": make_attachment("cat.png", data=picture)}, timeout=15
        )

        sent = creates(mh)
        assert len(sent) == 2
        assert sent[0].json["assets"]["image_file_path"].startswith(cdn)
        uploaded_path = sent[1].json["assets"]["image_file_path"]
        assert mh.uploads[uploaded_path] == picture  # the member's bytes, via upload-URLs + PUT
        assert last_edit(world, token).files
        job = await world.bot.ledger.get_job(interaction_id)
        assert job.status is JobStatus.COMPLETE and job.credits_charged == 5


async def test_stale_link_of_a_deleted_message_settles_the_failure(world: BotWorld) -> None:
    message = world.discord.add_message(attachments=[make_attachment("gone.png")])
    world.mh.fetchable = lambda url: False
    payload = world.discord.message_context_menu("Remove background", message)
    del world.discord.api.messages[int(message["id"])]  # deleted before the bot could re-fetch it
    interaction_id = world.discord.dispatch(payload)
    await world.discord.finished(interaction_id, timeout=15)

    assert len(creates(world.mh)) == 1
    content = last_edit(world, payload["token"]).json["content"]
    assert "couldn't fetch the image" in content and "No credits were kept" in content
    job = await world.bot.ledger.get_job(interaction_id)
    assert job.status is JobStatus.FAILED and job.credits_charged == 0


async def test_two_cancel_presses_at_once_are_one_cancel(tmp_path: Path, mh: FakeMagicHour) -> None:
    mh.job_duration = 1.5
    async with bot_world(tmp_path, mh, MAX_CONCURRENT_JOBS="1") as world:
        alice, bob = (make_member(make_user(name)) for name in ("alice", "bob"))
        world.discord.dispatch(
            world.discord.slash_command("remove-background", {"image": make_attachment()}, user=alice)
        )
        await world.discord.wait_for(lambda _: len(creates(mh)) == 1, timeout=5)
        queued = world.discord.slash_command("remove-background", {"image": make_attachment()}, user=bob)
        queued_id = world.discord.dispatch(queued)
        await world.discord.wait_for(
            lambda _: any(
                "number 1 in line" in e.json["content"] for e in world.discord.original_edits(queued["token"])
            ),
            timeout=5,
        )
        edit = next(e for e in world.discord.original_edits(queued["token"]) if "number 1 in line" in e.json["content"])
        button = edit.json["components"][0]["components"][0]
        await asyncio.sleep(0.2)  # discord.py registers the view once it has read the edit's answer

        message_id = int(edit.response["id"])
        clicks = [world.discord.button_click(button["custom_id"], message_id=message_id, user=bob) for _ in range(2)]
        for click in clicks:  # the same instant: both are dispatched before either is handled
            world.discord.dispatch(click)
        await world.discord.finished(queued_id, timeout=5)
        text = last_edit(world, queued["token"]).json["content"]
        assert "Cancelled. Nothing was charged." in text, text
        assert "restarting" not in text
        assert (await world.bot.ledger.get_job(queued_id)).status is JobStatus.REFUNDED
        await world.discord.finished(timeout=10)


async def test_when_neither_reply_nor_channel_take_the_result_the_member_gets_a_dm(world: BotWorld) -> None:
    world.mh.job_duration = 0.5
    payload = world.discord.slash_command("remove-background", {"image": make_attachment("shoe.png")})
    interaction_id = world.discord.dispatch(payload)
    await world.discord.wait_for(lambda _: len(creates(world.mh)) == 1, timeout=5)
    world.discord.api.expire_interaction(interaction_id)  # the reply can no longer be edited
    channel = world.discord.channel_id
    # The channel refuses the file (no Attach Files), then the text too (no Send Messages).
    world.discord.api.fail_next("POST", rf"^/channels/{channel}/messages$", status=403, times=2)
    await world.discord.finished(interaction_id, timeout=10)

    tries = world.discord.channel_messages(channel)
    assert [(bool(r.files), r.status) for r in tries] == [(True, 403), (False, 403)]
    assert "download it from" in tries[1].json["content"]  # the fallback text carries the link
    opened = world.discord.api.find("POST", r"^/users/@me/channels$")
    assert [int(r.json["recipient_id"]) for r in opened] == [world.discord.user.id]
    dm_channel = int(opened[0].response["id"])
    [dm] = world.discord.channel_messages(dm_channel)
    assert dm.status == 200 and dm.files and dm.files[0].filename == "shoe-no-background.png"
    assert f"<#{channel}>" in dm.json["content"]
    job = await world.bot.ledger.get_job(interaction_id)
    assert job.status is JobStatus.COMPLETE and job.delivered


async def test_a_result_that_reaches_no_one_is_settled_but_not_marked_delivered(world: BotWorld) -> None:
    world.mh.job_duration = 0.5
    payload = world.discord.slash_command("remove-background", {"image": make_attachment()})
    interaction_id = world.discord.dispatch(payload)
    await world.discord.wait_for(lambda _: len(creates(world.mh)) == 1, timeout=5)
    world.discord.api.expire_interaction(interaction_id)
    world.discord.api.fail_next("POST", r"^/channels/\d+/messages$", status=403, times=10)
    world.discord.api.fail_next("POST", r"^/users/@me/channels$", status=403, times=10)
    await world.discord.finished(interaction_id, timeout=10)

    job = await world.bot.ledger.get_job(interaction_id)
    assert job.status is JobStatus.COMPLETE and job.credits_charged == 5
    assert not job.delivered


async def test_a_private_requests_project_is_deleted_at_magic_hour_after_delivery(world: BotWorld) -> None:
    payload = world.discord.slash_command("remove-background", {"image": make_attachment("me.png"), "private": True})
    interaction_id = await world.discord.run(payload, timeout=10)
    job = await world.bot.ledger.get_job(interaction_id)
    assert job.delivered
    async with asyncio.timeout(5):
        while world.mh.count("DELETE", "/v1/image-projects/") == 0:
            await asyncio.sleep(0.02)
    [deleted] = [r.path for r in world.mh.requests if r.method == "DELETE"]
    assert deleted == f"/v1/image-projects/{job.project_id}"


async def test_a_public_requests_project_is_kept_with_the_default_setting(world: BotWorld) -> None:
    payload = world.discord.slash_command("remove-background", {"image": make_attachment("cat.png")})
    await world.discord.run(payload, timeout=10)
    await world.bot.runner.janitor.sweep()
    assert world.mh.count("DELETE", "/v1/image-projects/") == 0


async def test_a_result_too_large_to_upload_is_deleted_only_when_its_link_expires(world: BotWorld) -> None:
    world.mh.output_bytes = b"\x89PNG\r\n\x1a\n" + bytes(11 * 1024 * 1024)  # too big for the reply: a link
    payload = world.discord.slash_command("remove-background", {"image": make_attachment("big.png"), "private": True})
    interaction_id = await world.discord.run(payload, timeout=10)
    await world.bot.runner.janitor.sweep()
    assert world.mh.count("DELETE", "/v1/image-projects/") == 0  # the link still works for the member
    job = await world.bot.ledger.get_job(interaction_id)
    [edit] = [e for e in world.discord.original_edits(payload["token"]) if "download it from" in e.json["content"]]
    assert job.delivered and edit
