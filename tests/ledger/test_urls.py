import logging

import pytest

from bot.ledger import DatabaseUrlError, Ledger, normalize_database_url, redact_database_url

SECRET = "s3cr3t-pa55"


@pytest.mark.parametrize(
    ("raw", "driver", "database"),
    [
        ("sqlite:///relative/path.db", "sqlite+aiosqlite", "relative/path.db"),
        ("sqlite:////absolute/path.db", "sqlite+aiosqlite", "/absolute/path.db"),
        ("sqlite+aiosqlite:///data/bot.db", "sqlite+aiosqlite", "data/bot.db"),
        ("  sqlite:///data/bot.db\n", "sqlite+aiosqlite", "data/bot.db"),
        (f"postgresql://bot:{SECRET}@db.example:5432/credits", "postgresql+asyncpg", "credits"),
        (f"postgres://bot:{SECRET}@db.example:5432/credits", "postgresql+asyncpg", "credits"),
        (f"postgresql+asyncpg://bot:{SECRET}@db.example/credits", "postgresql+asyncpg", "credits"),
    ],
)
def test_accepted_forms_map_to_async_drivers(raw: str, driver: str, database: str) -> None:
    url = normalize_database_url(raw)
    assert url.drivername == driver
    assert url.database == database
    if url.password is not None:
        assert url.password == SECRET  # kept for connecting, only hidden when shown


def test_heroku_sslmode_becomes_asyncpg_ssl() -> None:
    url = normalize_database_url(f"postgres://u:{SECRET}@h/db?sslmode=require")
    assert dict(url.query) == {"ssl": "require"}


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "garbage",
        f"mysql://root:{SECRET}@localhost/db",
        f"postgresql+psycopg2://bot:{SECRET}@localhost/db",
        f"https://bot:{SECRET}@example.com/db",
        "sqlite://",
        "sqlite:///:memory:",
        f"sqlite://bot:{SECRET}@host/file.db",
    ],
)
def test_garbage_is_refused_without_leaking_the_password(raw: str) -> None:
    with pytest.raises(DatabaseUrlError) as caught:
        normalize_database_url(raw)
    assert isinstance(caught.value, ValueError)
    assert SECRET not in str(caught.value)
    assert "sqlite:///" in str(caught.value)  # the message says what would work
    assert caught.value.__cause__ is None


@pytest.mark.parametrize(
    "raw",
    [
        f"postgresql://bot:{SECRET}@db.example:5432/credits",
        f"postgres://bot:{SECRET}@db.example/credits?sslmode=require",
        f"weird scheme://bot:{SECRET}@[not-a-host",
    ],
)
def test_redaction_hides_the_password(raw: str) -> None:
    shown = redact_database_url(raw)
    assert SECRET not in shown
    assert "***" in shown
    assert "bot" in shown


def test_redaction_accepts_a_url_object() -> None:
    shown = redact_database_url(normalize_database_url(f"postgres://bot:{SECRET}@h/db"))
    assert shown == "postgresql+asyncpg://bot:***@h/db"


async def test_unreachable_database_error_does_not_leak_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # Port 1 on loopback refuses at once: a real connection attempt, never leaving this machine.
    with pytest.raises(OSError) as caught:
        await Ledger.open(f"postgresql://bot:{SECRET}@127.0.0.1:1/credits")
    assert SECRET not in str(caught.value)
    assert SECRET not in caplog.text
