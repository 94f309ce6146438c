"""Settings: every variable parsed once, with one clear error naming it."""

from __future__ import annotations

import pytest

from bot.settings import Settings, SettingsError, load_settings, parse_settings

REQUIRED = {"DISCORD_TOKEN": "abc.def.ghi", "MAGIC_HOUR_API_KEY": "mhk_live_secret"}


def test_defaults_when_only_the_required_values_are_set() -> None:
    settings = parse_settings(REQUIRED)
    assert settings.database_url == "sqlite:///data/bot.db"
    assert settings.magic_hour_base_url == "https://api.magichour.ai"
    assert settings.max_input_bytes == 20_000_000
    assert settings.max_concurrent_jobs == 16
    assert settings.max_jobs_per_member == 1
    assert (settings.default_guild_credit_limit, settings.default_guild_credit_period) == (100, "month")
    assert settings.max_guild_credit_limit == 100, "admins may lower their server's budget, not raise it"
    assert settings.bot_credit_budget is None and settings.allowed_guild_ids is None
    assert settings.shard_count is None


@pytest.mark.parametrize("missing", ["DISCORD_TOKEN", "MAGIC_HOUR_API_KEY"])
def test_a_missing_required_value_is_named(missing: str) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != missing}
    with pytest.raises(SettingsError) as caught:
        parse_settings(env)
    assert caught.value.name == missing
    assert "is not set" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("MAX_CONCURRENT_JOBS", "many", "whole number"),
        ("MAX_CONCURRENT_JOBS", "0", "at least 1"),
        ("MAX_INPUT_BYTES", "-5", "at least 1"),
        ("DEFAULT_GUILD_CREDIT_PERIOD", "fortnight", "day, week, month, none"),
        ("LOG_LEVEL", "LOUD", "DEBUG"),
        ("MAGIC_HOUR_BASE_URL", "api.magichour.ai", "https://"),
        ("JOB_DEADLINE_SECONDS", "soon", "number of seconds"),
        ("SHARD_IDS", "0,1", "SHARD_COUNT"),
        ("DISCORD_TOKEN", "Bot abc", "malformed"),
        ("PORT", "http", "whole number"),
        ("PORT", "70000", "between 0 and 65535"),
        ("MAGIC_HOUR_WEBHOOK_SECRET", "two words", "malformed"),
    ],
)
def test_malformed_values_are_refused_with_the_reason(name: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings({**REQUIRED, name: value})
    assert caught.value.name == name
    assert words in str(caught.value)


def test_shards_must_lie_within_the_count() -> None:
    with pytest.raises(SettingsError, match="between 0 and SHARD_COUNT-1"):
        parse_settings({**REQUIRED, "SHARD_COUNT": "2", "SHARD_IDS": "1,2"})
    settings = parse_settings({**REQUIRED, "SHARD_COUNT": "4", "SHARD_IDS": "2, 3"})
    assert settings.shard_ids == (2, 3)


def test_default_limit_cannot_exceed_the_ceiling() -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings({**REQUIRED, "DEFAULT_GUILD_CREDIT_LIMIT": "500", "MAX_GUILD_CREDIT_LIMIT": "200"})
    assert caught.value.name == "DEFAULT_GUILD_CREDIT_LIMIT"


def test_environment_wins_over_dotenv(tmp_path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DISCORD_TOKEN=from-file\nMAGIC_HOUR_API_KEY=file-key\nMAX_CONCURRENT_JOBS=3\n")
    settings = load_settings({"DISCORD_TOKEN": "from-environment"}, env_file=env_file)
    assert settings.discord_token == "from-environment"
    assert settings.magic_hour_api_key == "file-key"
    assert settings.max_concurrent_jobs == 3


def test_secrets_stay_out_of_repr() -> None:
    settings = parse_settings(
        {**REQUIRED, "DATABASE_URL": "postgresql://u:hunter22@db/x", "MAGIC_HOUR_WEBHOOK_SECRET": "whsec_abcdef"}
    )
    text = repr(settings)
    assert "abc.def.ghi" not in text and "mhk_live_secret" not in text and "hunter22" not in text
    assert "whsec_abcdef" not in text


def test_the_http_server_and_webhooks_are_off_unless_asked_for() -> None:
    assert (parse_settings(REQUIRED).port, parse_settings(REQUIRED).magic_hour_webhook_secret) == (None, None)
    settings = parse_settings({**REQUIRED, "PORT": "8080", "MAGIC_HOUR_WEBHOOK_SECRET": "whsec_abcdef"})
    assert (settings.port, settings.host, settings.magic_hour_webhook_secret) == (8080, "0.0.0.0", "whsec_abcdef")  # noqa: S104


@pytest.mark.parametrize("name", ["JOB_DEADLINE_SECONDS", "SHUTDOWN_GRACE_SECONDS", "MAGIC_HOUR_REQUEST_TIMEOUT"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-3"])
def test_durations_must_be_finite_and_positive(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings({**REQUIRED, name: value})
    assert caught.value.name == name and "finite" in caught.value.problem


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://api.magichour.ai", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:8080/", True),
        ("http://[::1]:8080", True),
        ("http://api.magichour.ai", False),  # the key would travel in clear
        ("http://10.0.0.5", False),
        ("ftp://api.magichour.ai", False),
        ("api.magichour.ai", False),
    ],
)
def test_the_magic_hour_address_must_be_https_except_on_loopback(url: str, accepted: bool) -> None:
    env = {**REQUIRED, "MAGIC_HOUR_BASE_URL": url}
    if accepted:
        assert parse_settings(env).magic_hour_base_url == url.rstrip("/")
    else:
        with pytest.raises(SettingsError) as caught:
            parse_settings(env)
        assert caught.value.name == "MAGIC_HOUR_BASE_URL" and "https://" in caught.value.problem


def test_every_default_comes_from_the_settings_class() -> None:
    """Defaults are written once, on `Settings`: an empty environment yields exactly them."""
    from dataclasses import fields

    parsed = parse_settings(REQUIRED)
    for spec in fields(Settings):
        if spec.name in ("discord_token", "magic_hour_api_key", "max_guild_credit_limit"):
            continue  # the ceiling's default is the default server limit
        assert getattr(parsed, spec.name) == spec.default, spec.name


def test_the_admin_ceiling_follows_the_default_limit_unless_set() -> None:
    assert parse_settings({**REQUIRED, "DEFAULT_GUILD_CREDIT_LIMIT": "40"}).max_guild_credit_limit == 40
    assert parse_settings({**REQUIRED, "MAX_GUILD_CREDIT_LIMIT": "500"}).max_guild_credit_limit == 500


def test_bot_budget_allowed_servers_and_owner_alerts() -> None:
    settings = parse_settings(
        {
            **REQUIRED,
            "BOT_CREDIT_BUDGET": "1000",
            "BOT_CREDIT_PERIOD": "week",
            "ALLOWED_GUILD_IDS": "123, 456",
            "LOW_BALANCE_CREDITS": "50",
            "OWNER_ALERT_CHANNEL_ID": "789",
        }
    )
    assert (settings.bot_credit_budget, settings.bot_credit_period) == (1000, "week")
    assert settings.allowed_guild_ids == {123, 456}
    assert (settings.low_balance_credits, settings.owner_alert_channel_id) == (50, 789)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ALLOWED_GUILD_IDS", "123,abc"),
        ("ALLOWED_GUILD_IDS", ","),
        ("BOT_CREDIT_PERIOD", "year"),
        ("BOT_CREDIT_BUDGET", "-1"),
    ],
)
def test_bad_owner_settings_are_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings({**REQUIRED, name: value})
    assert caught.value.name == name
