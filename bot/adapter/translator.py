"""Command descriptions, choices and menu names in every catalog's language, through discord.py's Translator.

Slash command and option names stay English on purpose: they are what members type and what the README and
every help message name, Discord's name rules are strict (lower case, 1-32 characters of letters and digits),
and a member switching languages would otherwise find the same command under another name. Descriptions, choice
names and context-menu names (which are shown, not typed) are translated.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.i18n import CATALOGS, words_for

KEPT_ENGLISH = frozenset(
    {
        app_commands.TranslationContextLocation.command_name,
        app_commands.TranslationContextLocation.group_name,
        app_commands.TranslationContextLocation.parameter_name,
    }
)


class CatalogTranslator(app_commands.Translator):
    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: app_commands.TranslationContextTypes
    ) -> str | None:
        shown_name = isinstance(context.data, app_commands.ContextMenu)  # a menu's name is read, not typed
        if (context.location in KEPT_ENGLISH and not shown_name) or locale.value not in CATALOGS:
            return None
        # Always given, even where a language writes the word as English does (Dutch "week"): Discord then shows it
        # as that language's own. An entry not yet translated reads as English (the catalog tests catch it).
        return words_for(locale.value).gettext(string.message)
