"""The Discord adapter: the only package (with `cogs/`) that may import `discord`.

It translates in both directions: interactions become `JobRequest`s for the runner, the runner's events
become message edits, and the ledger's alert decisions become channel posts. Everything outside it
(`bot.jobs`, `bot.ledger`, `bot.magic_hour`, …) is Discord-free; `tests/test_layering.py` proves it.
"""
