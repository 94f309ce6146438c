"""DATABASE_URL parsing: one place decides which engines we speak, so nothing else guesses.

Error messages and log lines only ever show `redact_database_url(...)`, because the URL usually
carries the database password.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

SQLITE_DRIVER = "sqlite+aiosqlite"
POSTGRES_DRIVER = "postgresql+asyncpg"

_SQLITE_SCHEMES = frozenset({"sqlite", "sqlite+aiosqlite"})
_POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "postgresql+asyncpg"})
_EXPECTED = "expected sqlite:///relative/path.db, sqlite:////absolute/path.db or postgresql://user:password@host/db"
_USERINFO = re.compile(r"(?P<head>[^:/?#]+://[^:/?#@]*):[^@/?#]*@")


class DatabaseUrlError(ValueError):
    """DATABASE_URL is unusable; the message is safe to show (it never contains the password)."""


def normalize_database_url(url: str | URL) -> URL:
    """Map every accepted spelling (Heroku's `postgres://` included) onto the async drivers we ship."""
    if isinstance(url, URL):
        parsed = url
    else:
        text = url.strip() if isinstance(url, str) else ""
        if not text:
            raise DatabaseUrlError(f"DATABASE_URL is empty; {_EXPECTED}")
        try:
            parsed = make_url(text)
        except (ArgumentError, ValueError):
            raise DatabaseUrlError(f"DATABASE_URL is not a database URL; {_EXPECTED}") from None

    scheme = parsed.drivername.lower()
    if scheme in _SQLITE_SCHEMES:
        return _normalize_sqlite(parsed)
    if scheme in _POSTGRES_SCHEMES:
        return _normalize_postgres(parsed)
    raise DatabaseUrlError(f"DATABASE_URL uses the unsupported scheme {scheme!r}; {_EXPECTED}")


def _normalize_sqlite(url: URL) -> URL:
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        raise DatabaseUrlError(
            "DATABASE_URL must name a SQLite file (an in-memory database loses every credit on restart); " + _EXPECTED
        )
    if url.host or url.username or url.password:
        raise DatabaseUrlError(f"DATABASE_URL: a SQLite URL takes no host or user; {_EXPECTED}")
    return url.set(drivername=SQLITE_DRIVER)


def _normalize_postgres(url: URL) -> URL:
    query = dict(url.query)
    # libpq's sslmode (what Heroku and most hosts hand out) is spelled `ssl` by asyncpg.
    sslmode = query.pop("sslmode", None)
    if sslmode is not None and "ssl" not in query:
        query["ssl"] = sslmode
    return url.set(drivername=POSTGRES_DRIVER, query=query)


def redact_database_url(url: str | URL) -> str:
    """The URL with its password replaced by `***`, safe for logs and error messages."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url.strip()).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, AttributeError):
        return _USERINFO.sub(r"\g<head>:***@", str(url))
