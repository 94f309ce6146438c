"""The owner's commands (`python -m bot report | grant | release | verify`) as real processes, on SQLite and
PostgreSQL.

The CLI runs through child_bot.py, so server names come from the fake Discord and the balance from the
fake Magic Hour; the ledger is seeded and checked from this process, as a running bot would see it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import subprocess
import sys
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.ledger import MAX_CREDITS, CeilingExceeded, JobStatus, Ledger, LedgerDefaults, Payer, normalize_database_url
from tests.fakes.discord_api import RecordedRequest
from tests.fakes.interactions import ADMIN_PERMISSIONS, make_member, make_user
from tests.postgres import fresh_postgres_database
from tests.process.conftest import CHILD, DISCORD_TOKEN, MH_KEY, BotProcess, Fakes, assert_no_secrets, base_env

DB_PASSWORD = "hunter2-owner-cli-db-secret"
SECRETS = (DISCORD_TOKEN, MH_KEY, DB_PASSWORD)
BIG, MIDDLE, SMALL, QUIET = 111_111_111_111_111_111, 222_222_222_222_222_222, 333_333_333_333_333_333, 444
DEFAULTS = LedgerDefaults(credit_limit=100, max_credit_limit=100)  # the bot's own, from the default settings
_ids = itertools.count(9_000_000_000_000_000)


@contextlib.asynccontextmanager
async def raw_sql(url: str) -> AsyncIterator[Any]:
    """A transaction on the database behind the ledger's back (what an operator's psql would do)."""
    engine = create_async_engine(normalize_database_url(url))
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database per test; the PostgreSQL URL carries a password, which must never be printed."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'owner.db'}"
        return
    # The test server trusts local connections: any password works.
    async with fresh_postgres_database("owner_cli") as url:
        yield url.set(password=DB_PASSWORD).render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def bot_ledger(url: str, **defaults: Any) -> AsyncIterator[Ledger]:
    async with await Ledger.open(url, replace(DEFAULTS, **defaults)) as ledger:
        yield ledger


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


async def owner(fakes: Fakes, *args: str, database_url: str, **env: str) -> Result:
    """One CLI process through child_bot.py (only 127.0.0.1 reachable); env values "" are left unset."""
    process = BotProcess(fakes.tmp_path, f"owner{len(fakes.processes)}")
    fakes.processes.append(process)  # the fixture kills it if it hangs and checks it printed no bot secret
    settings = {k: v for k, v in fakes.env(DATABASE_URL=database_url, **env).items() if v}
    await process.start([str(CHILD), fakes.api.api_base, fakes.gateway.url, *args], settings)
    result = Result(await process.wait(timeout=60), process.stdout, process.stderr)
    assert "Traceback" not in result.stdout + result.stderr, process.output
    assert_no_secrets(result.stdout + result.stderr, *SECRETS)
    return result


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot …` with no fakes at all: for cases that must stop before reaching anything."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env=base_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def add_job(ledger: Ledger, guild: int, status: str) -> int:
    """A job in the current period: complete (5 charged), failed (0), submitted or held (5 still held)."""
    iid = next(_ids)
    await ledger.reserve(interaction_id=iid, guild_id=guild, channel_id=1, user_id=2)
    if status == "held":
        await ledger.mark_sending(iid)
        await ledger.mark_held(iid, error="the create timed out")
        return iid
    await ledger.mark_sending(iid)
    await ledger.mark_submitted(iid, project_id=f"project-{iid}")
    if status == "complete":
        await ledger.settle(iid, status=JobStatus.COMPLETE, credits_charged=5)
    elif status == "failed":
        await ledger.settle(iid, status=JobStatus.FAILED, credits_charged=0, error="Magic Hour failed")
    return iid


async def seed_report(url: str) -> None:
    """MIDDLE spends 30 (25 used + 5 held), BIG 10 (one failure), SMALL 5 (one in flight)."""
    async with bot_ledger(url) as ledger:
        for _ in range(2):
            await add_job(ledger, BIG, "complete")
        await add_job(ledger, BIG, "failed")
        for _ in range(5):
            await add_job(ledger, MIDDLE, "complete")
        await add_job(ledger, MIDDLE, "held")
        await add_job(ledger, SMALL, "submitted")


def serve_guild_names(fakes: Fakes, names: dict[int, str]) -> list[RecordedRequest]:
    """GET /users/@me/guilds on the fake Discord (bot-authenticated, answered as Discord's contract says)."""
    seen: list[RecordedRequest] = []

    async def my_guilds(record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        seen.append(record)
        after = int(record.query.get("after", "0"))
        page = [
            {"id": str(g), "name": n, "icon": None, "banner": None, "owner": False, "permissions": "0", "features": []}
            for g, n in sorted(names.items())
            if g > after
        ]
        return 200, page

    fakes.api.add_route("GET", r"^/users/@me/guilds$", my_guilds)
    return seen


def table_rows(stdout: str) -> list[list[str]]:
    """The report's table, split on runs of 2+ spaces (a name may hold single spaces)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("SERVER"))
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip() or line.startswith("server names:"):
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


# ---- report -------------------------------------------------------------------------------------------


async def test_report_lists_servers_by_spend_with_names_totals_and_the_balance(fakes: Fakes, database_url: str) -> None:
    await seed_report(database_url)
    requests = serve_guild_names(fakes, {BIG: "Big Server", MIDDLE: "Middle Earth"})  # SMALL: the bot left it
    fakes.mh.credits = 12_345

    text = await owner(fakes, "report", database_url=database_url, BOT_CREDIT_BUDGET="1000")

    assert text.returncode == 0, text.stderr
    header = text.stdout.splitlines()[1].split()
    assert header == ["SERVER", "NAME", "LIMIT", "PERIOD", "USED", "RESERVED", "HELD", "JOBS", "FAILURES"]
    assert table_rows(text.stdout) == [
        [str(MIDDLE), "Middle Earth", "100", "month", "25", "5", "5", "6", "0"],
        [str(BIG), "Big Server", "100", "month", "10", "0", "0", "3", "1"],
        [str(SMALL), "100", "month", "0", "5", "0", "1", "0"],  # no name: the cell is blank
    ]
    assert "45 credits (used 35, reserved 10) of 1000" in text.stdout
    assert "balance: 12345 Magic Hour credits" in text.stdout
    assert requests and requests[0].headers.get("Authorization") == f"Bot {DISCORD_TOKEN}"

    document = (await owner(fakes, "report", "--json", database_url=database_url, BOT_CREDIT_BUDGET="1000")).json()
    assert [g["guild_id"] for g in document["guilds"]] == [str(MIDDLE), str(BIG), str(SMALL)]
    assert document["guilds"][0] == {
        "guild_id": str(MIDDLE),
        "name": "Middle Earth",
        "limit": 100,
        "period": "month",
        "used": 25,
        "reserved": 5,
        "held": 5,
        "spend": 30,
        "jobs": 6,
        "failures": 0,
    }
    assert document["guilds"][2]["name"] is None
    assert {k: document["bot"][k] for k in ("used", "reserved", "total", "budget", "period")} == {
        "used": 35,
        "reserved": 10,
        "total": 45,
        "budget": 1000,
        "period": "month",
    }
    assert document["balance"] == {"credits": 12_345, "unavailable": None}
    assert document["period"] == "month" and document["resets_at"] is not None


async def test_report_period_none_counts_all_time_and_reports_an_unset_budget(fakes: Fakes, database_url: str) -> None:
    await seed_report(database_url)
    result = await owner(fakes, "report", "--period", "none", "--json", database_url=database_url, DISCORD_TOKEN="")
    assert result.returncode == 0, result.stderr
    document = result.json()
    assert (document["period"], document["resets_at"]) == ("none", None)
    assert document["bot"]["budget"] is None
    assert document["names_unavailable"] == "DISCORD_TOKEN is not set"
    assert [g["name"] for g in document["guilds"]] == [None, None, None]


async def test_report_without_the_balance_still_succeeds_and_says_why(fakes: Fakes, database_url: str) -> None:
    await seed_report(database_url)
    unreachable = await owner(fakes, "report", database_url=database_url, MAGIC_HOUR_BASE_URL="http://127.0.0.1:9")
    assert unreachable.returncode == 0, unreachable.stderr
    assert re.search(r"^balance: unavailable \(.+\)$", unreachable.stdout, re.MULTILINE), unreachable.stdout
    assert str(MIDDLE) in unreachable.stdout

    rejected = await owner(fakes, "report", "--json", database_url=database_url, MAGIC_HOUR_API_KEY="mhk_wrong_key_x")
    assert rejected.returncode == 0, rejected.stderr
    balance = rejected.json()["balance"]
    assert balance["credits"] is None and balance["unavailable"]
    assert "mhk_wrong_key_x" not in rejected.stdout + rejected.stderr

    unset = await owner(fakes, "report", database_url=database_url, MAGIC_HOUR_API_KEY="")
    assert unset.returncode == 0 and "balance: unavailable (MAGIC_HOUR_API_KEY is not set)" in unset.stdout


async def test_an_empty_ledger_reports_no_servers(fakes: Fakes, database_url: str) -> None:
    result = await owner(fakes, "report", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "(no jobs in this period)" in result.stdout
    assert "0 credits (used 0, reserved 0) no bot-wide budget" in result.stdout


async def test_report_shows_a_hostile_server_name_without_its_control_characters(
    fakes: Fakes, database_url: str
) -> None:
    """A server's name is whatever its owner typed: escape sequences, carriage returns and bidi overrides
    would let it clear or reorder the owner's terminal. They are replaced; everything else is kept."""
    await seed_report(database_url)
    hostile = "Evil\x1b[2J\x1b]0;pwned\x07\rServer\u202eReversed\u200b\u2028Next\u2029\x00Café 🎨"
    serve_guild_names(fakes, {BIG: hostile, MIDDLE: "Middle Earth"})

    result = await owner(fakes, "report", database_url=database_url)

    assert result.returncode == 0, result.stderr
    unsafe = [c for c in result.stdout if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
    assert unsafe == []
    shown = "Evil\ufffd[2J\ufffd]0;pwned\ufffd\ufffdServer\ufffdReversed\ufffd\ufffdNext\ufffd\ufffdCafé 🎨"
    assert [row[1] for row in table_rows(result.stdout)[:2]] == ["Middle Earth", shown]
    # JSON escapes them (its readers get the name exactly as Discord gave it).
    document = await owner(fakes, "report", "--json", database_url=database_url)
    assert document.returncode == 0 and "\x1b" not in document.stdout and "\u202e" not in document.stdout
    assert {g["guild_id"]: g["name"] for g in document.json()["guilds"]}[str(BIG)] == hostile


# ---- grant ----------------------------------------------------------------------------------------------


async def test_grant_takes_up_to_the_largest_credits_the_ledger_stores(fakes: Fakes, database_url: str) -> None:
    """Credits are 32-bit columns: one more than they hold is a usage error before anything is written
    (PostgreSQL would otherwise refuse it mid-command), and the largest is stored exactly."""
    env = {"DISCORD_TOKEN": "", "MAGIC_HOUR_API_KEY": ""}
    too_many = await owner(fakes, "grant", str(BIG), str(MAX_CREDITS + 1), database_url=database_url, **env)
    assert too_many.returncode == 2, too_many.stdout + too_many.stderr
    lines = too_many.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: grant: ") and "2,147,483,647" in lines[0]
    assert too_many.stdout == ""

    largest = await owner(fakes, "grant", str(BIG), str(MAX_CREDITS), "--json", database_url=database_url, **env)
    assert largest.returncode == 0, largest.stderr
    assert largest.json()["granted_ceiling"] == MAX_CREDITS
    async with bot_ledger(database_url) as ledger:
        settings = await ledger.get_settings(BIG)
        assert (settings.credit_limit, settings.granted_ceiling) == (MAX_CREDITS, MAX_CREDITS)


async def test_grant_raises_the_ceiling_the_ledger_enforces_and_reset_undoes_it(
    fakes: Fakes, database_url: str
) -> None:
    async with bot_ledger(database_url) as ledger:
        with pytest.raises(CeilingExceeded):
            await ledger.set_limit(BIG, 300, "month")  # above the default ceiling of 100

    # Only DATABASE_URL: the owner's host need not hold the bot's secrets to grant.
    env = {"DISCORD_TOKEN": "", "MAGIC_HOUR_API_KEY": ""}
    granted = await owner(fakes, "grant", str(BIG), "500", "--period", "week", database_url=database_url, **env)
    assert granted.returncode == 0, granted.stderr
    assert "limit 500 credits per week" in granted.stdout and "up to 500" in granted.stdout

    async with bot_ledger(database_url) as ledger:
        settings = await ledger.get_settings(BIG)
        assert (settings.credit_limit, settings.period, settings.granted_ceiling) == (500, "week", 500)
        assert (await ledger.set_limit(BIG, 300, "week")).credit_limit == 300  # an admin, within the grant
        with pytest.raises(CeilingExceeded):
            await ledger.set_limit(BIG, 501, "week")
        with pytest.raises(CeilingExceeded):
            await ledger.set_limit(MIDDLE, 101, "month")  # other servers keep the default ceiling

    again = await owner(fakes, "grant", str(BIG), "700", "--json", database_url=database_url, **env)
    assert again.returncode == 0, again.stderr
    assert again.json() == {
        "guild_id": str(BIG),
        "limit": 700,
        "period": "week",  # no --period: the server keeps its own
        "ceiling": 700,
        "granted_ceiling": 700,
        "is_default": False,
    }

    reset = await owner(fakes, "grant", str(BIG), "--reset", database_url=database_url, **env)
    assert reset.returncode == 0, reset.stderr
    assert "back to the defaults" in reset.stdout and "limit 100 credits per month" in reset.stdout
    async with bot_ledger(database_url) as ledger:
        settings = await ledger.get_settings(BIG)
        assert (settings.is_default, settings.granted_ceiling, settings.credit_limit) == (True, None, 100)
        with pytest.raises(CeilingExceeded):
            await ledger.set_limit(BIG, 300, "month")


# ---- release --------------------------------------------------------------------------------------------


async def test_release_frees_only_that_servers_held_jobs_and_records_it(fakes: Fakes, database_url: str) -> None:
    async with bot_ledger(database_url) as ledger:
        held = [await add_job(ledger, BIG, "held") for _ in range(2)]
        in_flight = await add_job(ledger, BIG, "submitted")  # has a project id: not held
        elsewhere = await add_job(ledger, MIDDLE, "held")

    result = await owner(fakes, "release", str(BIG), "--json", database_url=database_url, DISCORD_TOKEN="")
    assert result.returncode == 0, result.stderr
    assert result.json() == {
        "guild_id": str(BIG),
        "released": 2,
        "credits": 10,
        "interaction_ids": [str(i) for i in sorted(held)],
    }
    async with bot_ledger(database_url) as ledger:
        assert (await ledger.held(BIG)).count == 0
        assert (await ledger.held(MIDDLE)).count == 1
        for iid in held:
            job = await ledger.get_job(iid)
            assert job is not None and job.status is JobStatus.REFUNDED and job.credits_charged == 0
            assert job.error is not None and job.error.startswith("released by the bot owner")
        assert (await ledger.get_job(in_flight)).status is JobStatus.SUBMITTED  # type: ignore[union-attr]
        assert (await ledger.get_job(elsewhere)).status is JobStatus.HELD  # type: ignore[union-attr]
        assert (await ledger.usage(BIG)).reserved == 5  # only the job in flight still counts

    nothing = await owner(fakes, "release", str(BIG), database_url=database_url)
    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout.strip() == f"server {BIG}: no held jobs, nothing to release."


async def test_an_operation_that_fails_exits_1_with_one_line(fakes: Fakes, database_url: str) -> None:
    """A damaged database (the balances table gone behind the ledger's back) opens, then the command fails."""
    async with bot_ledger(database_url) as ledger:
        await add_job(ledger, BIG, "held")
    async with raw_sql(database_url) as conn:
        await conn.execute(text("DROP TABLE balances"))
    for command in (["report"], ["release", str(BIG)], ["verify"]):
        result = await owner(fakes, *command, database_url=database_url)
        assert result.returncode == 1, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {command[0]} failed: "), result.stderr
        assert result.stdout == ""


# ---- verify ---------------------------------------------------------------------------------------------


async def test_verify_says_in_one_line_that_the_balances_agree(fakes: Fakes, database_url: str) -> None:
    await seed_report(database_url)
    result = await owner(fakes, "verify", database_url=database_url, DISCORD_TOKEN="", MAGIC_HOUR_API_KEY="")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "verify: every balance agrees with the job journal.\n" and result.stderr == ""
    document = await owner(fakes, "verify", "--json", database_url=database_url)
    assert document.returncode == 0 and document.json() == {"agree": True, "differences": []}


async def test_verify_names_a_balance_row_changed_behind_the_ledgers_back(fakes: Fakes, database_url: str) -> None:
    await seed_report(database_url)  # MIDDLE: 25 used, 5 held, 6 jobs
    async with raw_sql(database_url) as conn:
        changed = await conn.execute(
            text("UPDATE balances SET used = used + 7 WHERE scope = 'guild' AND guild_id = :g AND day = -1"),
            {"g": MIDDLE},
        )
        assert changed.rowcount == 1

    result = await owner(fakes, "verify", database_url=database_url)

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "verify: 1 balance row(s) disagree with the job journal:"
    assert lines[1:] == [
        f"  guild {MIDDLE}, all time: stored used=32 reserved=0 held=5 jobs=6 failures=0, "
        "journal says used=25 reserved=0 held=5 jobs=6 failures=0"
    ]
    document = await owner(fakes, "verify", "--json", database_url=database_url)
    assert document.returncode == 1
    assert document.json() == {"agree": False, "differences": [line.strip() for line in lines[1:]]}
    # Read-only: it reports the difference, it does not repair (or otherwise touch) anything.
    again = await owner(fakes, "verify", database_url=database_url)
    assert again.returncode == 1 and again.stdout == result.stdout


# ---- bad arguments and configuration --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["bogus"], "invalid choice"),
        (["grant"], "GUILD_ID"),
        (["grant", "abc", "5"], "server id"),
        (["grant", "0", "5"], "server id"),
        (["grant", "-3", "5"], "server id"),
        (["grant", "99999999999999999999", "5"], "server id"),
        (["grant", "123", "-5"], "whole number of credits"),
        (["grant", "123", "lots"], "whole number of credits"),
        (["grant", "123"], "--reset"),
        (["grant", "123", "5", "--reset"], "--reset takes no CREDITS"),
        (["grant", "123", "--reset", "--period", "day"], "--reset takes no --period"),
        (["grant", "123", "5", "--period", "year"], "day, week, month, none"),
        (["grant", "123", "5", "6"], "unrecognized"),
        (["release"], "GUILD_ID"),
        (["release", "x1"], "server id"),
        (["release", "1", "2"], "unrecognized"),
        (["report", "--period", "fortnight"], "day, week, month, none"),
        (["report", "--jsn"], "unrecognized"),
        (["report", "extra"], "unrecognized"),
        (["grant", "123", str(MAX_CREDITS + 1)], "from 0 to 2,147,483,647"),
        (["grant", "123", "99999999999999999999"], "from 0 to 2,147,483,647"),
        (["verify", "extra"], "unrecognized"),
        (["verify", "--period", "day"], "unrecognized"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(tmp_path: Path, argv: list[str], says: str) -> None:
    result = run_cli(tmp_path, *argv, DATABASE_URL="sqlite:///owner.db", MAGIC_HOUR_API_KEY=MH_KEY)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert says in lines[0]
    assert result.stdout == ""
    assert not (tmp_path / "owner.db").exists(), "a refused command must not touch the database"


def test_help_names_every_command_and_its_arguments(tmp_path: Path) -> None:
    top = run_cli(tmp_path, "--help")
    assert top.returncode == 0
    for command in ("run", "sync", "report", "grant", "release", "verify"):
        assert command in top.stdout
    grant = run_cli(tmp_path, "grant", "--help")
    assert grant.returncode == 0
    assert all(word in grant.stdout for word in ("GUILD_ID", "CREDITS", "--period", "--reset", "--json"))


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"DATABASE_URL": "mysql://bot:" + DB_PASSWORD + "@db.example/credits"}, "DATABASE_URL"),
        ({"DATABASE_URL": f"postgresql://bot:{DB_PASSWORD}@127.0.0.1:9/credits"}, "could not open the database"),
        ({"DATABASE_URL": "sqlite:///owner.db", "DEFAULT_GUILD_CREDIT_PERIOD": "year"}, "DEFAULT_GUILD_CREDIT_PERIOD"),
        ({"DATABASE_URL": "sqlite:///owner.db", "DISCORD_TOKEN": "Bot " + DISCORD_TOKEN}, "DISCORD_TOKEN"),
    ],
)
def test_bad_configuration_gets_one_line_exit_2_and_no_secret(tmp_path: Path, env: dict[str, str], names: str) -> None:
    for command in (["report"], ["grant", "1", "5"], ["release", "1"], ["verify"]):
        result = run_cli(tmp_path, *command, **env)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0], result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
        assert_no_secrets(result.stdout + result.stderr, *SECRETS)


def test_grant_and_release_need_no_discord_token_or_api_key(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "sqlite:///owner.db"}
    assert run_cli(tmp_path, "grant", "123", "300", **env).returncode == 0
    released = run_cli(tmp_path, "release", "123", **env)
    assert released.returncode == 0 and "nothing to release" in released.stdout


# ---- while the bot runs ---------------------------------------------------------------------------------


async def test_the_running_bot_obeys_a_grant_made_from_another_process(fakes: Fakes, database_url: str) -> None:
    guild = fakes.harness.guild_id
    bot = await fakes.start_bot("run", DATABASE_URL=database_url)
    await fakes.gateway.wait_ready(count=1, timeout=30)
    admin = make_member(make_user("admin"), permissions=ADMIN_PERMISSIONS)

    async def set_limit(credits: int) -> str:
        payload = fakes.harness.slash_command(
            "credits", {"credits": credits}, subcommand="set-limit", user=admin, permissions=ADMIN_PERMISSIONS
        )
        token = payload["token"]
        await fakes.gateway.push_interaction(payload)
        edits = await fakes.api.wait_for(lambda _: bool(fakes.api.original_edits(token)), timeout=15)
        del edits
        return str(fakes.api.original_edits(token)[-1].json["content"])

    assert "ceiling of 100" in await set_limit(300), bot.output  # the default ceiling, before any grant

    granted = await owner(fakes, "grant", str(guild), "500", database_url=database_url)
    assert granted.returncode == 0, granted.stderr + bot.output
    assert (await set_limit(300)).startswith("✅ Limit set."), bot.output

    async with bot_ledger(database_url) as ledger:
        held = await add_job(ledger, guild, "held")
    released = await owner(fakes, "release", str(guild), "--json", database_url=database_url)
    assert released.returncode == 0, released.stderr
    assert released.json()["interaction_ids"] == [str(held)]

    report = await owner(fakes, "report", "--json", database_url=database_url)
    assert report.returncode == 0, report.stderr
    [row] = report.json()["guilds"]
    assert (row["guild_id"], row["limit"], row["held"], row["reserved"]) == (str(guild), 300, 0, 0)
    assert bot.running, bot.output  # the bot kept running throughout

    reset = await owner(fakes, "grant", str(guild), "--reset", database_url=database_url)
    assert reset.returncode == 0, reset.stderr
    assert "ceiling of 100" in await set_limit(300), bot.output


async def test_report_shows_members_own_installs_as_one_row_naming_no_one(fakes: Fakes, database_url: str) -> None:
    await seed_report(database_url)
    async with bot_ledger(database_url, user_install_limit=50) as ledger:
        for member in (7_100_000_000_000_000_001, 7_100_000_000_000_000_002):
            iid = next(_ids)
            await ledger.reserve(interaction_id=iid, guild_id=None, channel_id=1, user_id=member, payer=Payer.USER)
            await ledger.mark_sending(iid)
            await ledger.mark_submitted(iid, project_id=f"project-{iid}")
            await ledger.settle(iid, status=JobStatus.COMPLETE, credits_charged=5)
    text = await owner(fakes, "report", database_url=database_url, DISCORD_TOKEN="")
    assert text.returncode == 0, text.stderr
    [row] = [line for line in text.stdout.splitlines() if line.startswith("user installs")]
    assert row.split()[2:] == ["2", "members", "10", "0", "0", "2", "0"]
    assert "7100000000000000001" not in text.stdout  # members are counted, not named
    document = (await owner(fakes, "report", "--json", database_url=database_url, DISCORD_TOKEN="")).json()
    assert document["user_installs"] == {
        "members": 2,
        "used": 10,
        "reserved": 0,
        "held": 0,
        "spend": 10,
        "jobs": 2,
        "failures": 0,
    }
    assert document["bot"]["total"] == 10 + 30 + 10 + 5  # members' own installs count bot-wide too
