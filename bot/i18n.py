"""Every member in their own language: gettext catalogs read once at start-up, looked up by Discord's locale.

The catalogs are the `.po` files under `bot/locales/<locale>/LC_MESSAGES/messages.po` (the template is
`bot/locales/messages.pot`). They are compiled in memory when first needed, so a fresh clone needs no build step
and a translator's edit takes effect on the next start without touching Python. A message's id is its English
sentence; where one English sentence says different things, the failure kind (or another short word) is its
context. Numbers are written the way each language writes them (Babel), and plurals follow each language's rules.
"""

from __future__ import annotations

import functools
import gettext
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

log = logging.getLogger("bot.i18n")

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "messages"
DEFAULT = "en-US"

# Discord's locale codes the bot has catalogs for, and the catalog (POSIX) name of each.
CATALOGS: dict[str, str] = {
    "de": "de",
    "es-ES": "es_ES",
    "es-419": "es_419",
    "fr": "fr",
    "it": "it",
    "nl": "nl",
    "pl": "pl",
    "pt-BR": "pt_BR",
    "ru": "ru",
    "tr": "tr",
    "uk": "uk",
    "ja": "ja",
    "ko": "ko",
    "zh-CN": "zh_CN",
    "zh-TW": "zh_TW",
}


@dataclass(frozen=True)
class Message:
    """A sentence to be said later, in the language of whoever reads it: its English id, context and values.

    Modules that decide what to say but not to whom (a link's problem, a file's problem) return one of these;
    `Words.say` puts it into words. Values that are themselves messages are said first.
    """

    id: str
    values: Mapping[str, Any] = field(default_factory=dict)
    context: str | None = None


def N_(message: str, /, *, context: str | None = None, **values: Any) -> Message:
    """Mark `message` for the catalogs (`pybabel extract -k N_`) and keep it to be said later."""
    return Message(message, values, context)


CLOSE_SENTENCES = frozenset({"ja", "zh-CN", "zh-TW"})


class Words:
    """One language's sentences, numbers and plurals. Look it up once per reply (`words_for`), then ask it.

    Placeholders are `{name}` fields filled after the lookup, so a translation may put them in any order.
    Quantities go through `number()` first (ids and timestamps must not be grouped), except a plural's `{n}`.
    """

    def __init__(self, locale: str, translations: gettext.NullTranslations) -> None:
        self.locale = locale  # Discord's code, e.g. "pt-BR"
        self.babel_locale = Locale.parse(CATALOGS.get(locale, "en_US"))
        self._t = translations

    def gettext(self, message: str, **values: Any) -> str:
        return self._fill(self._t.gettext(message), values)

    def pgettext(self, context: str, message: str, **values: Any) -> str:
        return self._fill(self._t.pgettext(context, message), values)

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        return self._fill(self._t.ngettext(singular, plural, n), {"n": self.number(n), **values})

    def npgettext(self, context: str, singular: str, plural: str, n: int, **values: Any) -> str:
        return self._fill(self._t.npgettext(context, singular, plural, n), {"n": self.number(n), **values})

    def say(self, message: Message) -> str:
        """A deferred sentence in this language (its values said first when they are messages too)."""
        values = {k: self.say(v) if isinstance(v, Message) else v for k, v in message.values.items()}
        if message.context is not None:
            return self.pgettext(message.context, message.id, **values)
        return self.gettext(message.id, **values)

    def join(self, *sentences: str) -> str:
        """Sentences one after another as the language writes them: Chinese and Japanese put no space after 。."""
        return ("" if self.locale in CLOSE_SENTENCES else " ").join(part for part in sentences if part)

    def number(self, value: int | float) -> str:
        """1,000,000 in English, 1.000.000 in German, 1 000 000 in French."""
        return format_decimal(value, locale=self.babel_locale)

    def _fill(self, text: str, values: dict[str, Any]) -> str:
        if not values:
            return text
        try:
            return text.format(**values)
        except (KeyError, IndexError, ValueError):
            log.error("a translation does not fit its placeholders (%s): %r", self.locale, text)
            return text


ENGLISH = Words(DEFAULT, gettext.NullTranslations())


def compile_catalog(path: Path) -> Translations:
    """A `.po` file as gettext translations, compiled in memory (no `.mo` file, no build step). Entries not yet
    translated (or fuzzy) are left out, so they read as English rather than as an empty line."""
    with path.open("rb") as source:
        catalog = read_po(source)
    for message in list(catalog):
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.id and (message.fuzzy or not all(forms)):
            catalog.delete(message.id, context=message.context)  # untranslated: English, with English plurals
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


@functools.cache
def _catalog(locale: str) -> Words:
    name = CATALOGS.get(locale)
    path = LOCALES_DIR / name / "LC_MESSAGES" / f"{DOMAIN}.po" if name else None
    if path is None or not path.is_file():
        return ENGLISH
    try:
        return Words(locale, compile_catalog(path))
    except Exception:
        log.exception("the %s catalog could not be read; English instead", locale)
        return ENGLISH


def words_for(locale: object) -> Words:
    """The words for a Discord locale (`interaction.locale`, a stored request's locale); English otherwise."""
    code = str(getattr(locale, "value", locale) or "")
    return _catalog(code) if code in CATALOGS else ENGLISH


def load_all() -> dict[str, Words]:
    """Every catalog, read now (at start-up): nothing on a reply's path reads a file."""
    return {code: _catalog(code) for code in CATALOGS}
