"""The CSV export: today's columns, which images were one request, every cell safe from spreadsheet formulas,
and a byte cap."""

import csv
import io

import pytest

from bot.ledger import ImageSpec, JobStatus, Ledger, Origin, export_csv
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
            "request_id",
            "position",
        )
    )
    assert first == [NOW.isoformat(), str(job.interaction_id), str(job.user_id), "77", "cm-1", "failed", "5", "0",
                     "no subject, sorry", job.request_id, "0"]  # fmt: skip
    assert second[4:] == ["", "reserved", "5", "", "", open_job.request_id, "0"]
    assert second[1] == str(open_job.interaction_id)
    assert job.request_id and open_job.request_id and job.request_id != open_job.request_id


async def test_the_images_of_one_request_share_its_id_and_keep_their_order(ledger: Ledger) -> None:
    single = await reserve(ledger)
    origin = Origin(interaction_id=4242, guild_id=GUILD, channel_id=77, user_id=single.user_id, created_at=NOW)
    images = [ImageSpec(f"https://cdn.example/{name}.png", input_filename=f"{name}.png") for name in ("a", "b", "c")]
    request, jobs = await ledger.reserve_request(origin, images, private=False)

    data, _ = export_csv(await ledger.export_rows(GUILD, now=NOW))
    header, *rows = parse(data)
    column = {name: header.index(name) for name in ("interaction_id", "request_id", "position")}
    by_request = [(row[column["interaction_id"]], row[column["request_id"]], row[column["position"]]) for row in rows]
    assert by_request == [
        (str(single.interaction_id), single.request_id, "0"),
        *((str(4242), request.id, str(position)) for position in range(3)),
    ]
    assert [job.request_id for job in jobs] == [request.id] * 3


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
