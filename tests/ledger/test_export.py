"""The CSV export: today's columns, every cell safe from spreadsheet formulas, and a byte cap."""

import csv
import io

import pytest

from bot.ledger import JobStatus, Ledger, export_csv
from bot.ledger.export import COLUMNS

from .conftest import NOW
from .steps import settle
from .test_ledger import GUILD, reserve


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


async def test_columns_and_values(ledger: Ledger) -> None:
    job = await reserve(ledger)
    await settle(
        ledger,
        job.interaction_id,
        project_id="cm-1",
        status=JobStatus.FAILED,
        credits_charged=0,
        error="no subject, sorry",
    )
    open_job = await reserve(ledger)
    data, left_out = export_csv(await ledger.export_rows(GUILD, now=NOW))
    assert left_out == 0
    header, first, second = parse(data)
    assert (
        tuple(header)
        == COLUMNS
        == (
            "created_at",
            "interaction_id",
            "user_id",
            "channel_id",
            "project_id",
            "status",
            "credits_reserved",
            "credits_charged",
            "error",
        )
    )
    assert first == [NOW.isoformat(), str(job.interaction_id), str(job.user_id), "77", "cm-1", "failed", "5", "0",
                     "no subject, sorry"]  # fmt: skip
    assert second[4:] == ["", "reserved", "5", "", ""]
    assert second[1] == str(open_job.interaction_id)


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
async def test_every_cell_that_a_spreadsheet_would_evaluate_is_quoted(ledger: Ledger, start: str) -> None:
    job = await reserve(ledger)
    error = f'{start}cmd|" /C calc"!A0'
    await settle(ledger, job.interaction_id, project_id=f"{start}HYPERLINK(1)", status=JobStatus.FAILED, error=error)
    data, _ = export_csv(await ledger.export_rows(GUILD, now=NOW))
    [row] = parse(data)[1:]
    assert row[4] == f"'{start}HYPERLINK(1)"
    assert row[8] == f'\'{start}cmd|" /C calc"!A0'
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)


async def test_byte_cap_keeps_whole_rows_and_counts_the_rest(ledger: Ledger) -> None:
    records = [await reserve(ledger) for _ in range(10)]
    full, _ = export_csv(records)
    header_and_three = sum(len(line) + 2 for line in full.decode().split("\r\n")[:4])
    capped, left_out = export_csv(records, max_bytes=header_and_three)
    assert len(capped) <= header_and_three
    assert (len(parse(capped)) - 1, left_out) == (3, 7)
    assert capped == full[: len(capped)]
    assert export_csv(records, max_bytes=len(full)) == (full, 0)
    with pytest.raises(ValueError, match="header"):
        export_csv(records, max_bytes=10)
