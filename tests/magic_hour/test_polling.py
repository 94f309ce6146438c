"""The poll schedule (a pure function of elapsed time) and wait() against the fake, on a manual clock."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import pytest

from bot.magic_hour import (
    AsyncClient,
    ImageProject,
    JobFailedError,
    NotFoundError,
    PollPolicy,
    PollTimeoutError,
    ProjectStatus,
    RetryPolicy,
)
from tests.fakes.magic_hour import FakeClock, FakeMagicHour

ASSETS = {"image_file_path": "https://cdn.example.com/cat.png"}
NO_JITTER = PollPolicy(jitter=0.0)


def polls_until(policy: PollPolicy, finish: float, rand: Callable[[], float] = lambda: 0.5) -> list[float]:
    """Elapsed times of the polls a job finishing at `finish` gets (the last one sees it complete)."""
    times = []
    for moment in policy.schedule(rand=rand):
        times.append(moment)
        if moment >= finish:
            break
    return times


def sdk_polls_until(finish: float, interval: float = 0.5) -> int:
    """The official SDK: one GET, then GET + sleep(0.5) until terminal."""
    count, moment = 1, 0.0
    while True:
        count += 1
        if moment >= finish:
            return count
        moment += interval


def test_first_poll_waits_then_dense_around_the_median_job():
    times = list(NO_JITTER.schedule())
    assert times[0] == pytest.approx(2.5)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    start, end = NO_JITTER.dense_start, NO_JITTER.dense_end
    dense = [gap for moment, gap in zip(times, gaps, strict=False) if start <= moment < end]
    assert dense and max(dense) <= 0.3 + 1e-9


def test_backs_off_geometrically_to_the_cap_then_stops_at_the_deadline():
    times = list(NO_JITTER.schedule())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    late = [gap for moment, gap in zip(times, gaps, strict=False) if NO_JITTER.dense_end <= moment < 20]
    assert all(b > a for a, b in itertools.pairwise(late))  # growing
    assert late[2] / late[1] > 1.2  # geometrically, not linearly
    assert max(gaps[:-1]) == pytest.approx(5.0)  # capped
    assert times[-1] == 600.0
    assert len(times) < 140  # bounded: a fixed 0.5 s loop would poll 1200 times


def test_jitter_stays_within_bounds():
    policy = PollPolicy(jitter=0.1)
    assert policy.next_delay(0.0, rand=lambda: 0.0) == pytest.approx(2.5 * 0.9)
    assert policy.next_delay(0.0, rand=lambda: 0.999999) == pytest.approx(2.5 * 1.1, rel=1e-4)
    assert policy.next_delay(4.0, rand=lambda: 0.5) == pytest.approx(policy.dense_interval)


def test_four_second_job_needs_at_most_half_the_sdk_polls_and_is_seen_quickly():
    ours = polls_until(PollPolicy(), 4.0)
    assert len(ours) * 2 <= sdk_polls_until(4.0)
    assert ours[-1] - 4.0 <= 0.3


@pytest.mark.parametrize("bad", [{"first_delay": 5.0, "dense_start": 3.0}, {"dense_interval": 0}, {"jitter": 1.5}])
def test_inconsistent_policies_are_refused(bad):
    with pytest.raises(ValueError):
        PollPolicy(**bad)


async def start(client: AsyncClient) -> str:
    return (await client.v1.image_background_remover.create(assets=ASSETS)).id


async def test_wait_returns_the_complete_project_and_reports_each_status_change_once(
    fake: FakeMagicHour, client: AsyncClient
):
    fake.job_duration = 6.0
    seen: list[ProjectStatus | str] = []
    project = await client.v1.image_projects.wait(id=await start(client), on_status=lambda p: seen.append(p.status))
    assert project.status is ProjectStatus.COMPLETE
    assert project.downloads and project.downloads[0].url.startswith(fake.base_url)
    assert seen == [ProjectStatus.RENDERING, ProjectStatus.COMPLETE]  # first seen included, no repeats
    assert fake.gets > len(seen)


async def test_wait_accepts_an_async_callback(fake: FakeMagicHour, client: AsyncClient):
    seen: list[ImageProject] = []

    async def record(project: ImageProject) -> None:
        seen.append(project)

    await client.v1.image_projects.wait(id=await start(client), on_status=record)
    assert [p.status for p in seen][-1] is ProjectStatus.COMPLETE


async def test_wait_polls_a_four_second_job_sparingly(fake: FakeMagicHour, client: AsyncClient):
    fake.job_duration = 4.0
    await client.v1.image_projects.wait(id=await start(client))
    assert fake.gets <= 5


async def test_job_error_raises_job_failed_with_code_message_and_id(fake: FakeMagicHour, client: AsyncClient):
    fake.script("error", code="invalid_input", message="Could not fetch the input image")
    job = await start(client)
    with pytest.raises(JobFailedError) as caught:
        await client.v1.image_projects.wait(id=job)
    error = caught.value
    assert (error.project_id, error.code, error.message) == (
        job,
        "invalid_input",
        "Could not fetch the input image",
    )
    assert error.project.status is ProjectStatus.ERROR
    assert error.project.credits_charged == 0  # refunded
    assert job in str(error) and "invalid_input" in str(error)


async def test_canceled_job_raises_job_failed_with_code_canceled(fake: FakeMagicHour, client: AsyncClient):
    fake.script("canceled")
    with pytest.raises(JobFailedError) as caught:
        await client.v1.image_projects.wait(id=await start(client))
    assert caught.value.code == "canceled"
    assert caught.value.project.status is ProjectStatus.CANCELED


async def test_unfetchable_input_ends_in_error(fake: FakeMagicHour, client: AsyncClient):
    fake.fetchable = lambda url: "expired" not in url
    job = (
        await client.v1.image_background_remover.create(
            assets={"image_file_path": "https://cdn.discordapp.com/a/b/expired.png?ex=1"}
        )
    ).id
    with pytest.raises(JobFailedError) as caught:
        await client.v1.image_projects.wait(id=job)
    assert caught.value.code == "invalid_input"


async def test_deadline_raises_poll_timeout_with_the_project_id(
    fake: FakeMagicHour, clock: FakeClock, client: AsyncClient
):
    fake.job_duration = 10_000.0
    job = await start(client)
    started = clock()
    with pytest.raises(PollTimeoutError) as caught:
        await client.v1.image_projects.wait(id=job, deadline=60.0)
    assert caught.value.project_id == job
    assert caught.value.last_status == "queued"
    assert job in str(caught.value)
    assert clock() - started == pytest.approx(60.0)  # the last poll lands on the deadline, not past it


async def test_default_deadline_comes_from_the_poll_policy(fake: FakeMagicHour, clock: FakeClock, make_client):
    client = make_client(poll=PollPolicy(deadline=30.0))
    fake.job_duration = 10_000.0
    job = await start(client)
    started = clock()
    with pytest.raises(PollTimeoutError):
        await client.v1.image_projects.wait(id=job)
    assert clock() - started == pytest.approx(30.0)


async def test_a_poll_failing_after_retries_does_not_abort_the_wait(fake: FakeMagicHour, make_client, caplog):
    client = make_client(retry=RetryPolicy(max_retries=1))
    job = await start(client)
    fake.fail_next("GET", "/v1/image-projects/", 503, times=2)  # one whole poll fails (try + retry)
    fake.fail_next("GET", "/v1/image-projects/", disconnect=True, times=2)  # and the next one too
    project = await client.v1.image_projects.wait(id=job)
    assert project.status is ProjectStatus.COMPLETE
    assert "still waiting" in caplog.text


async def test_not_found_while_waiting_propagates(fake: FakeMagicHour, client: AsyncClient):
    with pytest.raises(NotFoundError):
        await client.v1.image_projects.wait(id="cm-deleted")
    assert fake.gets == 1


async def test_unknown_status_keeps_polling(fake: FakeMagicHour, client: AsyncClient, caplog, monkeypatch):
    """A status the API adds later must not crash polling: it counts as still running."""
    job = await start(client)
    original = fake._project_body
    calls = {"n": 0}

    def with_new_status(fake_job):
        body = original(fake_job)
        calls["n"] += 1
        if calls["n"] == 1:
            body["status"] = "moderating"
        return body

    monkeypatch.setattr(fake, "_project_body", with_new_status)
    project = await client.v1.image_projects.wait(id=job)
    assert project.status is ProjectStatus.COMPLETE
    assert "moderating" in caplog.text
    fake.violations.clear()  # that answer broke the spec's enum on purpose


@pytest.mark.parametrize("seed", range(20))
def test_jitter_never_causes_a_tiny_extra_poll(seed: int):
    """A jittered poll landing just before a phase boundary must not be followed by a near-immediate one."""
    policy = PollPolicy()
    times = list(policy.schedule(rand=random.Random(seed).random))
    gaps = [b - a for a, b in itertools.pairwise(times[:-1])]  # the last gap is cut short by the deadline
    assert min(gaps) >= policy.dense_interval * (1 - policy.jitter) - 1e-9
    assert len(polls_until(policy, 4.0, random.Random(seed).random)) <= 5
