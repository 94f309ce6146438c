"""Buttons on the bot's replies."""

from __future__ import annotations

from collections.abc import Callable

import discord


class CancelView(discord.ui.View):
    """The Cancel button on a queued job; only the member who asked may press it.

    It gets a `cancel` callable rather than the bot, so a view knows nothing of the runner's internals.
    """

    def __init__(self, cancel: Callable[[], bool], owner_id: int, timeout: float) -> None:
        super().__init__(timeout=max(timeout, 1.0))
        self._cancel = cancel
        self.owner_id = owner_id

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                "Only the member who started this job can cancel it.", ephemeral=True
            )
            return False
        return True

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button[CancelView]) -> None:
        await interaction.response.defer()
        if not self._cancel():
            await interaction.followup.send("This job has already started and can't be cancelled.", ephemeral=True)
        self.stop()
