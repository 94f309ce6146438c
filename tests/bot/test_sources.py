"""Image sources: what a message offers (in order, named, skipped with a reason) and which links are refused."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.provisional import domains

from bot import replies
from bot.i18n import ENGLISH
from bot.inputs import IMAGE_EXTENSIONS, InputFile, Source, output_filename, problem_with
from bot.sources import (
    MAX_LINK_LENGTH,
    SPECIAL_USE_NAMES,
    AttachmentItem,
    EmbedItem,
    Picture,
    Skip,
    Skipped,
    StickerItem,
    avatar_image,
    check_link,
    link_image,
    message_images,
    refreshed_links,
)

CDN = "https://cdn.discordapp.com/attachments/1/2/{name}?ex=67&is=66&hm=abc"
PROXY = "https://images-ext-1.discordapp.net/external/h4sh/https/pics.example.com/{name}"


def attachment(name: str = "cat.png", content_type: str | None = "image/png", size: int = 1000) -> AttachmentItem:
    return AttachmentItem(name, content_type, size, CDN.format(name=name))


def picture(name: str) -> Picture:
    return Picture(f"https://pics.example.com/{name}", PROXY.format(name=name))


def sticker(name: str = "wave", format: str = "png", sticker_id: int = 42) -> StickerItem:
    extension = {"lottie": "json", "gif": "gif"}.get(format, "png")
    return StickerItem(name, format, f"https://cdn.discordapp.com/stickers/{sticker_id}.{extension}")


# -- check_link: a table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://pics.example.com/cat.png",
        "https://pics.example.com/a/b/My%20Cat.JPG?width=800&sig=abc#top",
        "HTTPS://Pics.Example.COM/cat.webp",
        "https://s3.eu-west-1.amazonaws.com/bucket/photo.jpeg?X-Amz-Signature=abc",
        "https://例え.jp/猫.png",
        "https://xn--r8jz45g.jp/cat.png",
        "https://pics.example.com:8443/cat.heic",
        "https://images-ext-1.discordapp.net/external/h4sh/https/pics.example.com/cat.png",
        "https://cdn.discordapp.com/guilds/1/users/2/avatars/a_abc.png?size=1024",
    ],
)
def test_public_https_image_links_are_accepted(url: str) -> None:
    assert check_link(url) is None


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://pics.example.com/cat.png", "must start with `https://`"),
        ("ftp://pics.example.com/cat.png", "must start with `https://`"),
        ("file:///etc/passwd.png", "must start with `https://`"),
        ("javascript:alert(1)//x.png", "must start with `https://`"),
        ("https://user:pw@pics.example.com/cat.png", "user name or password"),
        ("https://user@pics.example.com/cat.png", "user name or password"),
        ("https://pics.example.com@127.0.0.1/cat.png", "user name or password"),
        ("https://127.0.0.1/cat.png", "IP address"),
        ("https://10.0.0.7:8080/cat.png", "IP address"),
        ("https://2130706433/cat.png", "IP address"),  # 127.0.0.1 as one decimal number
        ("https://0x7f000001/cat.png", "IP address"),  # ... as hex
        ("https://0177.0.0.1/cat.png", "IP address"),  # ... octal
        ("https://127.1/cat.png", "IP address"),  # ... shortened
        ("https://0x7f.0.0.1/cat.png", "IP address"),
        ("https://%31%32%37.0.0.1/cat.png", "IP address"),
        ("https://１２７.０.０.１/cat.png", "IP address"),  # full-width digits and dots
        ("https://[::1]/cat.png", "IP address"),
        ("https://[::ffff:127.0.0.1]/cat.png", "IP address"),
        ("https://[fe80::1%25eth0]/cat.png", "IP address"),
        ("https://localhost/cat.png", "`localhost`"),
        ("https://LOCALHOST./cat.png", "`localhost`"),
        ("https://api.localhost/cat.png", "`localhost`"),
        ("https://intranet/cat.png", "has no domain"),
        ("https://printer.local/cat.png", "`.local`"),
        ("https://db.internal/cat.png", "`.internal`"),
        ("https://1.0.0.127.in-addr.arpa/cat.png", "`.arpa`"),
        ("https://pics..example.com/cat.png", "server name isn't valid"),
        ("https://-pics.example.com/cat.png", "server name isn't valid"),
        ("https://pics.example.com\\@evil.test/cat.png", "backslash"),
        ("https://pics.example.com/my cat.png", "spaces"),
        ("https://pics.example.com/cat.png\n", "control characters"),
        ("https:///cat.png", "no server name"),
        ("https://pics.example.com:99999/cat.png", "isn't a valid link"),
        ("https://pics.example.com/cat", "doesn't end in a file extension"),
        ("https://pics.example.com/cat.gif", "ends in .gif"),
        ("https://pics.example.com/cat.svg?x=.png", "ends in .svg"),
        ("https://pics.example.com/cat%2Epng", "doesn't end in a file extension"),
        ("https://pics.example.com/" + "a" * MAX_LINK_LENGTH + ".png", f"the most is {MAX_LINK_LENGTH}"),
    ],
)
def test_links_that_cannot_be_public_images_are_refused_in_words(url: str, words: str) -> None:
    problem = check_link(url)
    assert problem is not None
    assert words in ENGLISH.say(problem)


def test_the_length_limit_is_inclusive() -> None:
    base = "https://pics.example.com/"
    exact = base + "a" * (MAX_LINK_LENGTH - len(base) - 4) + ".png"
    assert len(exact) == MAX_LINK_LENGTH
    assert check_link(exact) is None
    assert check_link(exact[:-4] + "a.png") is not None


# -- check_link: properties -------------------------------------------------------------------------------

ipv4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1))
no_deadline = settings(deadline=None)  # the machine is shared: speed is for bench/, never for a test


@no_deadline
@given(ipv4, st.sampled_from(["dotted", "decimal", "hex", "octal", "mapped"]))
def test_every_spelling_of_an_ipv4_address_is_refused(address: ipaddress.IPv4Address, spelling: str) -> None:
    host = {
        "dotted": str(address),
        "decimal": str(int(address)),
        "hex": hex(int(address)),
        "octal": ".".join(f"0{int(part):o}" for part in str(address).split(".")),
        "mapped": f"[::ffff:{address}]",
    }[spelling]
    problem = check_link(f"https://{host}/picture.png")
    assert problem is not None and "IP address" in ENGLISH.say(problem)


@no_deadline
@given(st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1)))
def test_every_ipv6_address_is_refused(address: ipaddress.IPv6Address) -> None:
    problem = check_link(f"https://[{address}]/picture.png")
    assert problem is not None and "IP address" in ENGLISH.say(problem)


@no_deadline
@given(
    domains(),
    st.lists(st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12), max_size=3),
    st.sampled_from(sorted(IMAGE_EXTENSIONS)),
)
def test_public_domains_with_an_image_path_are_accepted(host: str, folders: list[str], extension: str) -> None:
    assume(host.rsplit(".", 1)[-1].lower() not in SPECIAL_USE_NAMES)
    url = f"https://{host}/{'/'.join([*folders, f'picture.{extension}'])}"
    assume(len(url) <= MAX_LINK_LENGTH)
    assert check_link(url) is None


@no_deadline
@given(st.text(max_size=300) | st.from_regex(r"\Ahttps://[^/]{0,30}/[^ ]{0,40}\Z"))
def test_whatever_is_accepted_is_an_https_link_to_a_named_host_with_an_image_path(url: str) -> None:
    problem = check_link(url)  # never raises, whatever the member typed
    if problem is not None:
        return
    parts = urlsplit(url)
    assert parts.scheme.lower() == "https"
    assert "@" not in parts.netloc
    assert parts.hostname and "." in parts.hostname.rstrip(".")
    with pytest.raises(ValueError):
        ipaddress.ip_address(parts.hostname)
    assert parts.path.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS
    assert len(url) <= MAX_LINK_LENGTH


# -- what a message offers ---------------------------------------------------------------------------------


def test_attachments_then_embeds_then_stickers_each_named_after_its_source() -> None:
    found = message_images(
        [attachment("shoe.jpg", "image/jpeg")],
        [EmbedItem("image", thumbnail=picture("sunset.webp")), EmbedItem("rich", image=picture("card.png"))],
        [sticker("Happy Cat", "png"), sticker("dance", "apng", 43)],
    )
    assert [(i.source, i.url) for i in found.images] == [
        (Source.ATTACHMENT, CDN.format(name="shoe.jpg")),
        (Source.EMBED, PROXY.format(name="sunset.webp")),  # Discord's media proxy, which Magic Hour can fetch
        (Source.EMBED, PROXY.format(name="card.png")),
        (Source.STICKER, "https://cdn.discordapp.com/stickers/42.png"),
        (Source.STICKER, "https://cdn.discordapp.com/stickers/43.png"),
    ]
    assert [output_filename(i.filename) for i in found.images] == [
        "shoe-no-background.png",
        "sunset-no-background.png",
        "card-no-background.png",
        "Happy-Cat-no-background.png",
        "dance-no-background.png",
    ]
    assert found.skipped == () and found.left_out == 0


def test_an_embeds_image_wins_over_its_thumbnail_and_a_picture_without_a_proxy_uses_its_own_link() -> None:
    both = EmbedItem("rich", image=picture("big.png"), thumbnail=picture("icon.png"))
    own_link = EmbedItem("article", thumbnail=Picture("https://news.example.com/story/lead.jpg"))
    found = message_images([], [both, own_link])
    assert [i.url for i in found.images] == [PROXY.format(name="big.png"), "https://news.example.com/story/lead.jpg"]


def test_what_magic_hour_cannot_take_is_named_with_its_reason_in_message_order() -> None:
    found = message_images(
        [
            attachment("clip.mp4", "video/mp4"),
            attachment("party.gif", "image/gif"),
            attachment("logo.svg", "image/svg+xml"),
            attachment("notes.txt", "text/plain"),
            attachment("ok.png"),
        ],
        [
            EmbedItem("gifv", thumbnail=picture("dance.png"), has_video=True),
            EmbedItem("video", thumbnail=picture("hqdefault.jpg"), has_video=True),
            EmbedItem("image", thumbnail=picture("spin.gif")),
            EmbedItem("image", thumbnail=Picture("https://pics.example.com/render", None)),
            EmbedItem("rich"),  # text only: not an image at all, so nothing to name
        ],
        [sticker("blob", "lottie"), sticker("wiggle", "gif")],
    )
    assert [i.filename for i in found.images] == ["ok.png"]
    assert found.skipped == (
        Skipped("clip.mp4", Skip.VIDEO),
        Skipped("party.gif", Skip.GIF),
        Skipped("logo.svg", Skip.FORMAT),
        Skipped("notes.txt", Skip.NOT_AN_IMAGE),
        Skipped("dance.png", Skip.GIF),
        Skipped("hqdefault.jpg", Skip.VIDEO),
        Skipped("spin.gif", Skip.GIF),
        Skipped("render", Skip.LINK),
        Skipped("blob", Skip.LOTTIE),
        Skipped("wiggle", Skip.GIF),
    )


def test_an_embed_whose_link_is_not_public_is_skipped_not_sent() -> None:
    found = message_images([], [EmbedItem("image", thumbnail=Picture("http://127.0.0.1:8080/cat.png", None))])
    assert found.images == ()
    assert found.skipped == (Skipped("cat.png", Skip.LINK),)


def test_a_message_gives_at_most_ten_images_and_counts_the_rest() -> None:
    found = message_images(
        [attachment(f"a{i}.png") for i in range(8)],
        [EmbedItem("image", thumbnail=picture(f"e{i}.png")) for i in range(3)],
        [sticker("s", "png")],
    )
    assert [i.filename for i in found.images] == [*(f"a{i}.png" for i in range(8)), "e0.png", "e1.png"]
    assert found.left_out == 2


def test_avatar_and_link_results_are_named_after_the_member_and_the_file() -> None:
    avatar = avatar_image("Zoë ✨", "https://cdn.discordapp.com/avatars/1/abc.png?size=1024")
    assert output_filename(avatar.filename) == "Zoë---avatar-no-background.png"
    assert avatar.source is Source.AVATAR
    link = link_image("https://pics.example.com/albums/My%20Dog.jpg?w=10")
    assert link.url == "https://pics.example.com/albums/My%20Dog.jpg?w=10"  # verbatim
    assert output_filename(link.filename) == "My-Dog-no-background.png"


# -- checks on inputs that are links -------------------------------------------------------------------------


def test_link_inputs_are_checked_on_their_link_not_on_a_size_or_type_no_one_knows() -> None:
    good = InputFile("image", "wave.png", None, None, "https://cdn.discordapp.com/stickers/1.png", Source.STICKER)
    bad = InputFile("image", "wave.png", None, None, "https://cdn.discordapp.com/stickers/1", Source.STICKER)
    assert problem_with(good, 1000) is None
    problem = problem_with(bad, 1000)
    assert problem is not None and "without an image extension" in ENGLISH.say(problem)
    # An attachment still needs its size and type.
    upload = InputFile("image", "cat.png", "image/png", None, CDN.format(name="cat.png"))
    refused = problem_with(upload, 1000)
    assert refused is not None and "is empty" in ENGLISH.say(refused)


# -- Discord's attachment refresh ---------------------------------------------------------------------------


def test_refreshed_links_keeps_only_well_formed_https_answers() -> None:
    answer = {
        "refreshed_urls": [
            {"original": "https://cdn/a.png?ex=1", "refreshed": "https://cdn/a.png?ex=2"},
            {"original": "https://cdn/b.png?ex=1", "refreshed": "http://cdn/b.png?ex=2"},
            {"original": "https://cdn/c.png?ex=1"},
            "nonsense",
        ]
    }
    assert refreshed_links(answer) == {"https://cdn/a.png?ex=1": "https://cdn/a.png?ex=2"}
    assert refreshed_links({"refreshed_urls": None}) == {}
    assert refreshed_links([]) == {}


# -- the words -----------------------------------------------------------------------------------------------


def test_skipped_items_are_listed_with_reasons_and_capped() -> None:
    text = replies.skipped_sources(ENGLISH, [Skipped("clip.mp4", Skip.VIDEO), Skipped("blob", Skip.LOTTIE)], left_out=3)
    assert "`clip.mp4` (a video)" in text
    assert "`blob` (an animated Lottie sticker)" in text
    assert "3 more were left out" in text
    many = replies.skipped_sources(ENGLISH, [Skipped(f"f{i}.mp4", Skip.VIDEO) for i in range(25)])
    assert "`f9.mp4`" in many and "`f10.mp4`" not in many and "and 15 more" in many
    assert len(many) < 2000


def test_a_message_without_images_says_so_and_names_what_it_has() -> None:
    text = replies.no_image_in_message(ENGLISH, (Skipped("party", Skip.GIF),))
    assert "no image" in text and "`party` (a GIF)" in text
    assert "Nothing was charged" in text
