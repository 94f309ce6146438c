"""The catalogs keep up with the code: every sentence translated in every language, placeholders kept, plural
forms as each language needs them, and the template extracted from the code as it is now.

Pure file checks (Babel reads the `.po` files), so they run in milliseconds and say exactly which entry of
which language is wrong.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from bot.i18n import CATALOGS, LOCALES_DIR, words_for

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3),
    "N_": None,
    "locale_str": None,
}
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale)


def template() -> Catalog:
    return read(LOCALES_DIR / "messages.pot")


def catalog(code: str) -> Catalog:
    name = CATALOGS[code]
    return read(LOCALES_DIR / name / "LC_MESSAGES" / "messages.po", locale=name)


def messages(found: Catalog) -> dict[tuple[str | None, str], Message]:
    return {(m.context, m.id if isinstance(m.id, str) else m.id[0]): m for m in found if m.id}


def placeholders(text: str) -> Counter[str]:
    return Counter(PLACEHOLDER.findall(text))


def test_the_template_is_in_step_with_the_code() -> None:
    """`pybabel extract` (see the README) was run after the last change to a sentence."""
    extracted: set[tuple[str | None, str]] = set()
    for folder in ("bot", "cogs"):
        for _file, _line, message, _comments, context in extract_from_dir(
            ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            extracted.add((context, message if isinstance(message, str) else message[0]))
    stored = set(messages(template()))
    assert extracted - stored == set(), "sentences in the code that messages.pot lacks: run pybabel extract"
    assert stored - extracted == set(), "messages.pot has sentences the code no longer says: run pybabel extract"


@pytest.mark.parametrize("code", sorted(CATALOGS))
def test_every_message_is_translated_in_every_catalog(code: str) -> None:
    translated = messages(catalog(code))
    missing = [key for key in messages(template()) if key not in translated]
    assert missing == [], f"{code} lacks these messages: run pybabel update, then translate them"
    empty = [
        key
        for key, message in translated.items()
        if message.fuzzy or not all(message.string if isinstance(message.string, tuple) else (message.string,))
    ]
    assert empty == [], f"{code} has untranslated or fuzzy entries"


@pytest.mark.parametrize("code", sorted(CATALOGS))
def test_every_translation_keeps_its_placeholders(code: str) -> None:
    wrong = []
    for key, message in messages(catalog(code)).items():
        if isinstance(message.id, str):
            if placeholders(message.string) != placeholders(message.id):
                wrong.append((key, message.string))
            continue
        source = placeholders(message.id[1])
        for form in message.string:
            kept = placeholders(form)
            # A language's "one" form may spell its number out: only {n} may go, and nothing may be added.
            if kept != source and kept != source - Counter({"n": source["n"]}):
                wrong.append((key, form))
    assert wrong == [], f"{code}: translations whose placeholders differ from the English"


@pytest.mark.parametrize("code", sorted(CATALOGS))
def test_plural_entries_have_the_forms_the_language_needs(code: str) -> None:
    found = catalog(code)
    needed = get_plural(CATALOGS[code]).num_plurals
    assert found.num_plurals == needed
    short = [m.id for m in found if m.id and not isinstance(m.id, str) and len(m.string) != needed]
    assert short == []


def test_a_catalog_is_read_and_used_with_the_plural_rule_of_its_language() -> None:
    polish = words_for("pl")
    forms = {polish.ngettext("{n} credit", "{n} credits", n) for n in (1, 2, 5)}
    assert len(forms) == 3  # one, few, many: "1 kredyt", "2 kredyty", "5 kredytów"
    assert words_for("hu").gettext("Cancelled. Nothing was charged.") == "Cancelled. Nothing was charged."
