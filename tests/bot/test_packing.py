"""Which result goes in which message: at most 10 files and one upload limit per message, order kept."""

from bot.adapter.packing import pack_files


def test_ten_files_fill_one_message_and_the_eleventh_starts_another() -> None:
    pack = pack_files([(i, 100) for i in range(11)], first_limit=10_000, later_limit=10_000)
    assert pack.messages == [list(range(10)), [10]]
    assert pack.links == []


def test_the_upload_limit_splits_messages_in_order() -> None:
    pack = pack_files([(0, 3000), (1, 3000), (2, 3000), (3, 3000), (4, 3000)], first_limit=8000, later_limit=8000)
    assert pack.messages == [[0, 1], [2, 3], [4]]


def test_a_file_too_large_for_any_message_becomes_a_link_and_the_rest_still_pack() -> None:
    pack = pack_files([(0, 100), (1, 9000), (2, 100)], first_limit=8000, later_limit=8000)
    assert pack.messages == [[0, 2]]
    assert pack.links == [1]


def test_later_messages_follow_their_own_limit() -> None:
    pack = pack_files([(0, 5000), (1, 5000), (2, 5000)], first_limit=10_000, later_limit=4000)
    assert pack.messages == [[0, 1]]
    assert pack.links == [2]
