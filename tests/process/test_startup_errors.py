"""Configuration mistakes end `python -m bot` with exit status 2 and one line that says what to fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.process.conftest import DISCORD_TOKEN, MH_KEY, assert_no_secrets, base_env

EXIT_CONFIG = 2
DB_PASSWORD = "hunter2-db-secret"


def run_bot(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """No fakes are started: every case must stop before the bot tries to reach anything."""
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=base_env(**env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def valid(**overrides: str) -> dict[str, str]:
    env = {
        "DISCORD_TOKEN": DISCORD_TOKEN,
        "MAGIC_HOUR_API_KEY": MH_KEY,
        "MAGIC_HOUR_BASE_URL": "http://127.0.0.1:9",  # never reached: each case fails before
        "DATABASE_URL": "sqlite:///bot.db",
        **overrides,
    }
    return {k: v for k, v in env.items() if v}


def assert_one_line_error(result: subprocess.CompletedProcess[str], *names: str) -> str:
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0]
    assert_no_secrets(result.stdout + result.stderr)
    return lines[0]


@pytest.mark.parametrize(
    ("missing", "hint"),
    [
        ("DISCORD_TOKEN", "discord.com/developers"),
        ("MAGIC_HOUR_API_KEY", "magichour.ai/developer"),
    ],
)
def test_a_missing_secret_is_named_with_where_to_get_it(tmp_path: Path, missing: str, hint: str) -> None:
    line = assert_one_line_error(run_bot(tmp_path, valid(**{missing: ""})), missing, "is not set")
    assert hint in line
    assert not (tmp_path / "bot.db").exists(), "the ledger must not be created before settings are valid"


def test_a_malformed_number_is_named_with_the_bad_value(tmp_path: Path) -> None:
    line = assert_one_line_error(run_bot(tmp_path, valid(MAX_CONCURRENT_JOBS="lots")), "MAX_CONCURRENT_JOBS")
    assert "whole number" in line and "'lots'" in line


def test_an_unsupported_database_url_is_refused(tmp_path: Path) -> None:
    line = assert_one_line_error(run_bot(tmp_path, valid(DATABASE_URL="mysql://x")), "DATABASE_URL")
    assert "postgresql://" in line  # says what is accepted
    assert line.count("DATABASE_URL") == 1  # named once, not stuttered


def test_a_database_password_is_never_printed(tmp_path: Path) -> None:
    url = f"mysql://bot:{DB_PASSWORD}@db.example/credits"
    result = run_bot(tmp_path, valid(DATABASE_URL=url))
    assert_one_line_error(result, "DATABASE_URL")
    assert_no_secrets(result.stdout + result.stderr, DB_PASSWORD)


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"DISCORD_TOKEN={DISCORD_TOKEN}\nMAGIC_HOUR_API_KEY={MH_KEY}\nMAX_CONCURRENT_JOBS=lots\n", encoding="utf-8"
    )
    # Without .env the first complaint would be the missing DISCORD_TOKEN.
    assert_one_line_error(run_bot(tmp_path, {}), "MAX_CONCURRENT_JOBS")


def test_the_environment_wins_over_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"DISCORD_TOKEN={DISCORD_TOKEN}\nMAGIC_HOUR_API_KEY={MH_KEY}\nMAX_CONCURRENT_JOBS=lots\n", encoding="utf-8"
    )
    result = run_bot(tmp_path, {"MAX_CONCURRENT_JOBS": "4", "DATABASE_URL": "mysql://x"})
    line = assert_one_line_error(result, "DATABASE_URL")
    assert "MAX_CONCURRENT_JOBS" not in line


def test_an_unreachable_database_stops_start_up_with_one_line(tmp_path: Path) -> None:
    url = f"postgresql://bot:{DB_PASSWORD}@127.0.0.1:1/x"  # port 1: nothing listens
    result = run_bot(tmp_path, valid(DATABASE_URL=url))
    line = assert_one_line_error(result, "DATABASE_URL", "127.0.0.1:1")
    assert "could not open the database" in line
    assert_no_secrets(result.stdout + result.stderr, DB_PASSWORD)


def test_a_schema_newer_than_the_bot_stops_start_up_with_one_line(tmp_path: Path) -> None:
    import sqlite3

    from bot.ledger.migrations import LATEST_VERSION

    database = tmp_path / "bot.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (?, '2030-01-01 00:00:00')", (LATEST_VERSION + 1,))
    line = assert_one_line_error(run_bot(tmp_path, valid(DATABASE_URL=f"sqlite:///{database}")), "DATABASE_URL")
    assert "newer than this bot" in line and "upgrade the bot" in line
