"""Buttons on the bot's replies."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Self

import discord

from bot import replies
from bot.adapter.expressions import ExpressionMaker
from bot.i18n import Words, words_for
from bot.replies import Expression

# Fixed custom ids: discord.py routes a press by the id alone (`DynamicItem`), so the buttons on any result
# message keep working after a restart, however old the message.
EMOJI_BUTTON_ID = "mhbg:emoji"
STICKER_BUTTON_ID = "mhbg:sticker"


class CancelView(discord.ui.View):
    """The Cancel button on a queued job; only the member who asked may press it.

    It gets a `cancel` callable rather than the bot, so a view knows nothing of the runner's internals.
    """

    def __init__(self, cancel: Callable[[], bool], owner_id: int, timeout: float, words: Words) -> None:
        super().__init__(timeout=max(timeout, 1.0))
        self._cancel = cancel
        self.owner_id = owner_id
        self.cancel.label = replies.cancel_label(words)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(replies.not_your_job(words_for(interaction.locale)), ephemeral=True)
            return False
        return True

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button[CancelView]) -> None:
        await interaction.response.defer()
        if not self._cancel():
            await interaction.followup.send(replies.already_started(words_for(interaction.locale)), ephemeral=True)
        self.stop()


class ConfirmView(discord.ui.View):
    """A yes/no question for one member: `action` runs once, on Release, and its text replaces the question."""

    def __init__(self, owner_id: int, action: Callable[[], Awaitable[str]], timeout: float, words: Words) -> None:
        super().__init__(timeout=timeout)
        self.owner_id = owner_id
        self._action = action
        self._done = False
        self.words = words
        self.confirm.label = replies.release_label(words)
        self.keep.label = replies.keep_label(words)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                replies.not_your_question(words_for(interaction.locale)), ephemeral=True
            )
            return False
        return True

    @discord.ui.button(label="Release", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button[ConfirmView]) -> None:
        if self._done:  # a second press in the same instant
            await interaction.response.defer()
            return
        self._done = True
        self.stop()
        await interaction.response.defer()
        text = await self._action()
        await interaction.edit_original_response(content=text, view=None)

    @discord.ui.button(label="Keep", style=discord.ButtonStyle.secondary)
    async def keep(self, interaction: discord.Interaction, button: discord.ui.Button[ConfirmView]) -> None:
        self._done = True
        self.stop()
        await interaction.response.edit_message(content=replies.nothing_released(self.words), view=None)


def _maker(client: discord.Client) -> ExpressionMaker:
    maker = getattr(client, "expressions", None)
    if not isinstance(maker, ExpressionMaker):
        raise TypeError("the client has no ExpressionMaker in `expressions`")
    return maker


class _ExpressionButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=r"mhbg:(?:emoji|sticker)"):
    """Shared by both buttons; only the subclasses below are registered."""

    kind: Expression = "emoji"
    button_id = EMOJI_BUTTON_ID

    def __init__(self, words: Words | None = None) -> None:
        label = replies.add_as_label(words or words_for(None), self.kind)
        super().__init__(discord.ui.Button(label=label, style=discord.ButtonStyle.secondary, custom_id=self.button_id))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls()  # the label shown stays the one the message was sent with

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _maker(interaction.client).add(interaction, self.kind)


class AddAsEmoji(_ExpressionButton, template=re.escape(EMOJI_BUTTON_ID)):
    kind = "emoji"
    button_id = EMOJI_BUTTON_ID


class AddAsSticker(_ExpressionButton, template=re.escape(STICKER_BUTTON_ID)):
    kind = "sticker"
    button_id = STICKER_BUTTON_ID


RESULT_BUTTONS = (AddAsEmoji, AddAsSticker)  # for `bot.add_dynamic_items`


def result_buttons(words: Words) -> discord.ui.View:
    """The view on a public result message in a server that installed the bot; it holds no state of its own.
    Its labels are in the language of the member the result is for."""
    view = discord.ui.View(timeout=None)
    view.add_item(AddAsEmoji(words))
    view.add_item(AddAsSticker(words))
    return view
