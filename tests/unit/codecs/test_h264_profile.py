"""H.264 profile-level-id (RFC 6184 §8.1, H.264 Annex A) and fmtp negotiation (§8.2.2)."""

from __future__ import annotations

import pytest

from interlive.codecs.h264 import (
    DEFAULT_PROFILE_LEVEL_ID,
    H264Level,
    H264Profile,
    H264ProfileLevelId,
    ProfileLevelIdError,
    h264_answer_level,
    h264_answer_profile_level_id,
    h264_decodable,
    h264_fmtp_match,
)

CB = H264Profile.CONSTRAINED_BASELINE
B = H264Profile.BASELINE
M = H264Profile.MAIN
CH = H264Profile.CONSTRAINED_HIGH
H = H264Profile.HIGH
PH444 = H264Profile.PREDICTIVE_HIGH_444


@pytest.mark.parametrize(
    ("hex6", "profile", "level"),
    [
        ("42e01f", CB, H264Level.L3_1),
        ("42E01F", CB, H264Level.L3_1),
        ("42c01f", CB, H264Level.L3_1),
        ("42401f", CB, H264Level.L3_1),
        ("42f01f", CB, H264Level.L3_1),  # constraint_set3 ignored when level_idc != 11
        ("4d801f", CB, H264Level.L3_1),  # Main + constraint_set0 (conforms to Baseline)
        ("58c01f", CB, H264Level.L3_1),  # Extended + set0 + set1
        ("42001f", B, H264Level.L3_1),
        ("42a01f", B, H264Level.L3_1),
        ("58801f", B, H264Level.L3_1),
        ("4d001f", M, H264Level.L3_1),
        ("4d401f", M, H264Level.L3_1),
        ("640c1f", CH, H264Level.L3_1),
        ("64001f", H, H264Level.L3_1),
        ("640034", H, H264Level.L5_2),
        ("f4001f", PH444, H264Level.L3_1),
        ("42000a", B, H264Level.L1),
        ("42e00b", CB, H264Level.L1_1),
        ("42f00b", CB, H264Level.L1B),  # level_idc 11 + constraint_set3
        ("42100b", B, H264Level.L1B),
        ("4d100b", M, H264Level.L1B),
        ("640009", H, H264Level.L1B),  # High family: level_idc 9
        ("640c09", CH, H264Level.L1B),
        ("42e03e", CB, H264Level.L6_2),
    ],
)
def test_parse(hex6: str, profile: H264Profile, level: H264Level) -> None:
    assert H264ProfileLevelId.parse(hex6) == H264ProfileLevelId(profile, level)


@pytest.mark.parametrize(
    "hex6",
    [
        "",
        "42e01",
        "42e01f0",
        "0x42e0",
        "42e0 f",
        "+42e01",
        "42_e01",
        "g2e01f",
        "42e000",  # level_idc 0
        "42e009",  # level_idc 9 is 1b only for the High family
        "42e0ff",
        "640800",  # High with constraint_set4 only
        "641f1f",
        "4d201f",  # Main with constraint_set2
        "42e11f",  # reserved bit set
        "6e001f",  # High 10 (not negotiated)
        "7a001f",  # High 4:2:2
    ],
)
def test_parse_rejects(hex6: str) -> None:
    with pytest.raises(ProfileLevelIdError):
        H264ProfileLevelId.parse(hex6)


@pytest.mark.parametrize(
    ("profile", "level", "text"),
    [
        (CB, H264Level.L3_1, "42e01f"),
        (B, H264Level.L3_1, "42001f"),
        (M, H264Level.L3_1, "4d001f"),
        (CH, H264Level.L3_1, "640c1f"),
        (H, H264Level.L5_1, "640033"),
        (PH444, H264Level.L4, "f40028"),
        (CB, H264Level.L1B, "42f00b"),
        (B, H264Level.L1B, "42100b"),
        (M, H264Level.L1B, "4d100b"),
        (H, H264Level.L1B, "640009"),
        (CB, H264Level.L1_1, "42e00b"),
    ],
)
def test_str_canonical(profile: H264Profile, level: H264Level, text: str) -> None:
    value = H264ProfileLevelId(profile, level)
    assert str(value) == text
    assert H264ProfileLevelId.parse(text) == value


def test_level_order() -> None:
    assert H264Level.L1 < H264Level.L1B < H264Level.L1_1 < H264Level.L3_1 < H264Level.L6_2
    assert min(H264Level.L1_1, H264Level.L1B) is H264Level.L1B
    assert sorted(H264Level) == list(H264Level)


def test_default_profile_level_id() -> None:
    assert DEFAULT_PROFILE_LEVEL_ID == "42000a"
    assert H264ProfileLevelId.from_fmtp({}) == H264ProfileLevelId(B, H264Level.L1)


CHROME_CB = {
    "level-asymmetry-allowed": "1",
    "packetization-mode": "1",
    "profile-level-id": "42e01f",
}


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (CHROME_CB, CHROME_CB, True),
        (CHROME_CB, {"packetization-mode": "1", "profile-level-id": "42e034"}, True),
        (CHROME_CB, {"packetization-mode": "1", "profile-level-id": "42c02a"}, True),
        (CHROME_CB, {"packetization-mode": "1", "profile-level-id": "4d801f"}, True),
        (CHROME_CB, {**CHROME_CB, "packetization-mode": "0"}, False),
        (CHROME_CB, {"profile-level-id": "42e01f"}, False),  # mode defaults to 0
        (CHROME_CB, {"packetization-mode": "1", "profile-level-id": "42001f"}, False),
        (CHROME_CB, {"packetization-mode": "1", "profile-level-id": "640c1f"}, False),
        (CHROME_CB, {"packetization-mode": "1", "profile-level-id": "zzzzzz"}, False),
        ({}, {"profile-level-id": "42000a"}, True),  # both Baseline, mode 0
        ({}, {"packetization-mode": "0", "profile-level-id": "420029"}, True),
        ({}, {"profile-level-id": "42e00a"}, False),
        (
            {"Packetization-Mode": "1", "PROFILE-LEVEL-ID": "64001F"},
            {"packetization-mode": "1", "profile-level-id": "640032"},
            True,
        ),
        ({"packetization-mode": "1"}, {"packetization-mode": "1 "}, True),
    ],
)
def test_fmtp_match(a: dict[str, str], b: dict[str, str], match: bool) -> None:
    assert h264_fmtp_match(a, b) is match
    assert h264_fmtp_match(b, a) is match


def test_answer_level() -> None:
    offer = {"packetization-mode": "1", "profile-level-id": "42e034"}
    local = {"packetization-mode": "1", "profile-level-id": "42e01f"}
    assert h264_answer_level(offer, local) is H264Level.L3_1
    assert h264_answer_level(local, offer) is H264Level.L3_1
    # Both sides allow asymmetry: the answer states what the answerer receives.
    asym = {"level-asymmetry-allowed": "1"}
    assert h264_answer_level({**offer, **asym}, {**local, **asym}) is H264Level.L3_1
    assert h264_answer_level({**local, **asym}, {**offer, **asym}) is H264Level.L5_2
    assert h264_answer_level({**local, **asym}, offer) is H264Level.L3_1
    assert h264_answer_profile_level_id({**local, **asym}, {**offer, **asym}) == "42e034"
    assert h264_answer_profile_level_id(offer, local) == "42e01f"
    assert (
        h264_answer_profile_level_id({"profile-level-id": "42c00b"}, {"profile-level-id": "42e00a"})
        == "42e00a"
    )
    assert h264_answer_profile_level_id({"profile-level-id": "42f00b"}, CHROME_CB) == "42f00b"


def test_answer_rejects_profile_mismatch() -> None:
    with pytest.raises(ProfileLevelIdError):
        h264_answer_profile_level_id({"profile-level-id": "64001f"}, CHROME_CB)
    with pytest.raises(ProfileLevelIdError):
        h264_answer_level({"profile-level-id": "nothex"}, CHROME_CB)


@pytest.mark.parametrize(
    ("stream", "receiver", "decodable"),
    [
        ("64001e", "64001f", True),  # High to High, levels apart
        ("64001e", "f4001f", True),  # a High 4:4:4 Predictive decoder takes High
        ("64001e", "42e01f", False),  # a Constrained Baseline decoder does not
        ("64001e", "4d001f", False),
        ("64001e", "640c1f", False),  # Constrained High: no B-frames promised
        ("42e01f", "64001f", True),  # Constrained Baseline goes anywhere
        ("42e01f", "42001f", True),
        ("42e01f", "4d001f", True),
        ("42001f", "42e01f", False),  # Baseline may use FMO/ASO
        ("42001f", "4d001f", False),
        ("4d001f", "64001f", True),
        ("4d001f", "42001f", False),
        ("640c1f", "64001f", True),
        ("f4001f", "64001f", False),
    ],
)
def test_h264_decodable_follows_the_decoder_conformance_of_annex_a(
    stream: str, receiver: str, decodable: bool
) -> None:
    mode = {"packetization-mode": "1"}
    assert (
        h264_decodable({**mode, "profile-level-id": stream}, {**mode, "profile-level-id": receiver})
        is decodable
    )


def test_h264_decodable_needs_the_same_packetization_mode() -> None:
    assert not h264_decodable(
        {"packetization-mode": "1", "profile-level-id": "42e01f"}, {"profile-level-id": "42e01f"}
    )
    assert not h264_decodable({"profile-level-id": "zzzzzz"}, {"profile-level-id": "42e01f"})
