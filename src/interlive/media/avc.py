"""H.264 SPS fields, AVCDecoderConfigurationRecord and AAC AudioSpecificConfig.

* :class:`Sps` reads the sequence parameter set (H.264 §7.3.2.1.1) up to the
  frame cropping fields: profile_idc, the constraint flags, level_idc, the
  chroma format and bit depths, and the displayed width and height (§7.4.2.1.1,
  equations 7-18 to 7-22 and the CropUnitX/CropUnitY rules).  The VUI is not read.
* :class:`AvcDecoderConfiguration` is the ``AVCDecoderConfigurationRecord`` of
  ISO/IEC 14496-15 §5.3.3.1: the body of the FLV AVC sequence header and of the
  MP4 ``avcC`` box.  For the High profiles (profile_indication not 66, 77 or
  88) the record may end with chroma_format, bit depths and SPS extensions;
  they are optional on parse (many writers omit them) and written by
  :meth:`AvcDecoderConfiguration.from_parameter_sets` as FFmpeg does.
* :class:`AudioSpecificConfig` is the AAC decoder configuration
  (ISO/IEC 14496-3 §1.6.2.1): audio object type, sampling frequency index (or
  an explicit frequency) and channel configuration, then the GASpecificConfig
  flags written as zero.

Theory of operation: NAL units are given without start codes, with their
one-byte header.  Emulation prevention bytes (``00 00 03``, §7.4.1) are removed
before the exp-Golomb fields (§9.1) are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import AacConfigError, AvcConfigError, SpsError

__all__ = [
    "AAC_SAMPLING_FREQUENCIES",
    "AudioSpecificConfig",
    "AvcDecoderConfiguration",
    "Sps",
    "nal_to_rbsp",
]

_NAL_SPS = 7
_NAL_PPS = 8
# profile_idc values whose SPS carries chroma_format_idc, bit depths and scaling lists.
_HIGH_SPS_PROFILES = frozenset((100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135))
# profile_indication values without the avcC High-profile extension (14496-15 §5.3.3.1.2).
_NO_EXT_PROFILES = frozenset((66, 77, 88))
# (SubWidthC, SubHeightC) by chroma_format_idc 1..3 (H.264 Table 6-1).
_SUB_WH = {1: (2, 2), 2: (2, 1), 3: (1, 1)}


def nal_to_rbsp(nal: bytes) -> bytes:
    """Remove emulation prevention bytes: every ``00 00 03`` becomes ``00 00`` (§7.4.1)."""
    if b"\x00\x00\x03" not in nal:
        return bytes(nal)
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class _Bits:
    """MSB-first bit reader with exp-Golomb codes (H.264 §9.1)."""

    __slots__ = ("_data", "_pos", "_size")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._size = len(data) * 8

    def u(self, n: int) -> int:
        if self._pos + n > self._size:
            raise SpsError(f"SPS truncated: needs bit {self._pos + n}, has {self._size}")
        value = 0
        for _ in range(n):
            byte = self._data[self._pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise SpsError("exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = 8
    nxt = 8
    for _ in range(size):
        if nxt != 0:
            delta = bits.se()
            nxt = (last + delta + 256) % 256
        last = last if nxt == 0 else nxt


@dataclass(frozen=True, slots=True)
class Sps:
    """The fields of an H.264 SPS that the FLV/RTMP path needs (§7.3.2.1.1).

    ``constraint_flags`` is the byte holding constraint_set0..5 and the two
    reserved bits; ``width``/``height`` are the cropped (displayed) size.
    """

    profile_idc: int
    constraint_flags: int
    level_idc: int
    seq_parameter_set_id: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    frame_mbs_only: bool
    width: int
    height: int

    @classmethod
    def parse(cls, nal: bytes) -> Sps:
        """Parse an SPS NAL unit (with its header byte); raises :class:`SpsError`."""
        if len(nal) < 4:
            raise SpsError(f"SPS of {len(nal)} bytes is too short")
        if nal[0] & 0x1F != _NAL_SPS:
            raise SpsError(f"NAL unit type {nal[0] & 0x1F} is not an SPS (7)")
        bits = _Bits(nal_to_rbsp(nal[1:]))
        profile_idc = bits.u(8)
        constraint_flags = bits.u(8)
        level_idc = bits.u(8)
        sps_id = bits.ue()
        if sps_id > 31:
            raise SpsError(f"seq_parameter_set_id {sps_id} > 31")
        chroma_format_idc = 1
        separate_colour_plane = False
        bit_depth_luma = bit_depth_chroma = 8
        if profile_idc in _HIGH_SPS_PROFILES:
            chroma_format_idc = bits.ue()
            if chroma_format_idc > 3:
                raise SpsError(f"chroma_format_idc {chroma_format_idc} > 3")
            if chroma_format_idc == 3:
                separate_colour_plane = bool(bits.u(1))
            bit_depth_luma = bits.ue() + 8
            bit_depth_chroma = bits.ue() + 8
            if bit_depth_luma > 14 or bit_depth_chroma > 14:
                raise SpsError(f"bit depth {bit_depth_luma}/{bit_depth_chroma} > 14")
            bits.u(1)  # qpprime_y_zero_transform_bypass_flag
            if bits.u(1):  # seq_scaling_matrix_present_flag
                for i in range(8 if chroma_format_idc != 3 else 12):
                    if bits.u(1):
                        _skip_scaling_list(bits, 16 if i < 6 else 64)
        log2_max_frame_num = bits.ue() + 4
        if log2_max_frame_num > 16:
            raise SpsError(f"log2_max_frame_num {log2_max_frame_num} > 16")
        poc_type = bits.ue()
        if poc_type == 0:
            if bits.ue() + 4 > 16:
                raise SpsError("log2_max_pic_order_cnt_lsb > 16")
        elif poc_type == 1:
            bits.u(1)  # delta_pic_order_always_zero_flag
            bits.se()  # offset_for_non_ref_pic
            bits.se()  # offset_for_top_to_bottom_field
            cycle = bits.ue()
            if cycle > 255:
                raise SpsError(f"num_ref_frames_in_pic_order_cnt_cycle {cycle} > 255")
            for _ in range(cycle):
                bits.se()
        elif poc_type != 2:
            raise SpsError(f"pic_order_cnt_type {poc_type} > 2")
        bits.ue()  # max_num_ref_frames
        bits.u(1)  # gaps_in_frame_num_value_allowed_flag
        width_mbs = bits.ue() + 1
        height_map_units = bits.ue() + 1
        frame_mbs_only = bool(bits.u(1))
        if not frame_mbs_only:
            bits.u(1)  # mb_adaptive_frame_field_flag
        bits.u(1)  # direct_8x8_inference_flag
        width = width_mbs * 16
        height = (2 - frame_mbs_only) * height_map_units * 16
        if bits.u(1):  # frame_cropping_flag
            left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
            chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
            if chroma_array_type == 0:
                unit_x, unit_y = 1, 2 - frame_mbs_only
            else:
                sub_w, sub_h = _SUB_WH[chroma_array_type]
                unit_x, unit_y = sub_w, sub_h * (2 - frame_mbs_only)
            width -= unit_x * (left + right)
            height -= unit_y * (top + bottom)
            if width <= 0 or height <= 0:
                raise SpsError(f"frame cropping leaves {width}x{height}")
        return cls(
            profile_idc=profile_idc,
            constraint_flags=constraint_flags,
            level_idc=level_idc,
            seq_parameter_set_id=sps_id,
            chroma_format_idc=chroma_format_idc,
            bit_depth_luma=bit_depth_luma,
            bit_depth_chroma=bit_depth_chroma,
            frame_mbs_only=frame_mbs_only,
            width=width,
            height=height,
        )


@dataclass(frozen=True, slots=True)
class AvcDecoderConfiguration:
    """AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1).

    ``chroma_format``, ``bit_depth_luma_minus8`` and ``bit_depth_chroma_minus8``
    are None when the High-profile extension is absent; ``sps_ext`` are its
    SequenceParameterSetExtNALUnits.
    """

    profile_indication: int
    profile_compatibility: int
    level_indication: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    length_size_minus_one: int = 3
    configuration_version: int = 1
    chroma_format: int | None = None
    bit_depth_luma_minus8: int | None = None
    bit_depth_chroma_minus8: int | None = None
    sps_ext: tuple[bytes, ...] = ()

    @classmethod
    def from_parameter_sets(
        cls, sps: Sequence[bytes], pps: Sequence[bytes], *, extension: bool = True
    ) -> AvcDecoderConfiguration:
        """Build the record from SPS and PPS NAL units (profile and level from the first SPS).

        With ``extension`` (the default) the High-profile fields are written
        when the profile calls for them, as FFmpeg's FLV and MP4 muxers do.
        Raises :class:`SpsError` for a bad SPS, :class:`AvcConfigError` when
        either list is empty.
        """
        if not sps or not pps:
            raise AvcConfigError("an AVCDecoderConfigurationRecord needs an SPS and a PPS")
        first = Sps.parse(sps[0])
        with_ext = extension and first.profile_idc not in _NO_EXT_PROFILES
        return cls(
            profile_indication=first.profile_idc,
            profile_compatibility=first.constraint_flags,
            level_indication=first.level_idc,
            sps=tuple(bytes(s) for s in sps),
            pps=tuple(bytes(p) for p in pps),
            chroma_format=first.chroma_format_idc if with_ext else None,
            bit_depth_luma_minus8=first.bit_depth_luma - 8 if with_ext else None,
            bit_depth_chroma_minus8=first.bit_depth_chroma - 8 if with_ext else None,
        )

    @property
    def nal_length_size(self) -> int:
        """Bytes of the NAL unit length prefix in the samples (1, 2 or 4)."""
        return self.length_size_minus_one + 1

    @classmethod
    def parse(cls, data: bytes) -> AvcDecoderConfiguration:
        """Decode a record; raises :class:`AvcConfigError` if malformed."""
        n = len(data)
        if n < 7:
            raise AvcConfigError(f"AVCDecoderConfigurationRecord of {n} bytes, needs 7")
        if data[0] != 1:
            raise AvcConfigError(f"configurationVersion {data[0]}, expected 1")
        length_size_minus_one = data[4] & 0x03
        if length_size_minus_one == 2:
            raise AvcConfigError("lengthSizeMinusOne 2 (3-byte lengths) is not allowed")
        sps, pos = cls._units(data, 6, data[5] & 0x1F, "SPS")
        if pos >= n:
            raise AvcConfigError("record truncated before numOfPictureParameterSets")
        pps, pos = cls._units(data, pos + 1, data[pos], "PPS")
        if pos == n or data[1] in _NO_EXT_PROFILES:
            return cls(data[1], data[2], data[3], sps, pps, length_size_minus_one, 1)
        if pos + 4 > n:
            raise AvcConfigError("High-profile extension truncated")
        chroma = data[pos] & 0x03
        luma = data[pos + 1] & 0x07
        chroma_depth = data[pos + 2] & 0x07
        ext, pos = cls._units(data, pos + 4, data[pos + 3], "SPS extension")
        return cls(
            data[1],
            data[2],
            data[3],
            sps,
            pps,
            length_size_minus_one,
            1,
            chroma,
            luma,
            chroma_depth,
            ext,
        )

    @staticmethod
    def _units(data: bytes, pos: int, count: int, what: str) -> tuple[tuple[bytes, ...], int]:
        units: list[bytes] = []
        n = len(data)
        for i in range(count):
            if pos + 2 > n:
                raise AvcConfigError(f"{what} {i}: length truncated")
            size = int.from_bytes(data[pos : pos + 2], "big")
            pos += 2
            if size == 0 or pos + size > n:
                raise AvcConfigError(f"{what} {i}: length {size} exceeds the record")
            units.append(bytes(data[pos : pos + size]))
            pos += size
        return tuple(units), pos

    def __bytes__(self) -> bytes:
        if len(self.sps) > 31 or len(self.pps) > 255 or len(self.sps_ext) > 255:
            raise AvcConfigError("too many parameter sets for an AVCDecoderConfigurationRecord")
        if not all(0 <= v <= 255 for v in self._header_fields()):
            raise AvcConfigError("profile, compatibility and level must be 0..255")
        if self.length_size_minus_one not in (0, 1, 3):
            raise AvcConfigError(f"lengthSizeMinusOne {self.length_size_minus_one} not 0, 1, 3")
        out = bytearray(
            (
                self.configuration_version,
                self.profile_indication,
                self.profile_compatibility,
                self.level_indication,
                0xFC | self.length_size_minus_one,
                0xE0 | len(self.sps),
            )
        )
        _put_units(out, self.sps)
        out.append(len(self.pps))
        _put_units(out, self.pps)
        if self.chroma_format is not None:
            out.append(0xFC | (self.chroma_format & 3))
            out.append(0xF8 | ((self.bit_depth_luma_minus8 or 0) & 7))
            out.append(0xF8 | ((self.bit_depth_chroma_minus8 or 0) & 7))
            out.append(len(self.sps_ext))
            _put_units(out, self.sps_ext)
        return bytes(out)

    def _header_fields(self) -> tuple[int, int, int, int]:
        return (
            self.configuration_version,
            self.profile_indication,
            self.profile_compatibility,
            self.level_indication,
        )


def _put_units(out: bytearray, units: Sequence[bytes]) -> None:
    for unit in units:
        if not 0 < len(unit) <= 0xFFFF:
            raise AvcConfigError(f"parameter set of {len(unit)} bytes does not fit 16 bits")
        out += len(unit).to_bytes(2, "big")
        out += unit


# -- AAC AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) ---------------------------------

AAC_SAMPLING_FREQUENCIES = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
    11025,
    8000,
    7350,
)
"""Sampling frequency by samplingFrequencyIndex 0..12 (Table 1.18)."""


@dataclass(frozen=True, slots=True)
class AudioSpecificConfig:
    """The leading fields of an AAC AudioSpecificConfig.

    ``object_type`` 2 is AAC LC; ``sampling_frequency_index`` 15 means the
    frequency is explicit (24 bits) in ``sampling_frequency``.  Fields after
    the channel configuration (GASpecificConfig, SBR/PS signalling) are kept
    in nothing: parsing ignores them, building writes the three GA flags as 0.
    """

    object_type: int
    sampling_frequency_index: int
    channel_configuration: int
    explicit_frequency: int | None = None

    @property
    def sampling_frequency(self) -> int:
        """The sampling rate in Hz."""
        if self.sampling_frequency_index == 15:
            return self.explicit_frequency or 0
        return AAC_SAMPLING_FREQUENCIES[self.sampling_frequency_index]

    @classmethod
    def for_rate(cls, sample_rate: int, channels: int, object_type: int = 2) -> AudioSpecificConfig:
        """The config for a rate and channel count (explicit frequency if not in the table)."""
        if sample_rate in AAC_SAMPLING_FREQUENCIES:
            return cls(object_type, AAC_SAMPLING_FREQUENCIES.index(sample_rate), channels)
        return cls(object_type, 15, channels, sample_rate)

    @classmethod
    def parse(cls, data: bytes) -> AudioSpecificConfig:
        """Decode the leading fields; raises :class:`AacConfigError`."""
        value = int.from_bytes(data[:8], "big")
        avail = 8 * min(len(data), 8)
        pos = 0

        def take(n: int) -> int:
            nonlocal pos
            if pos + n > avail:
                raise AacConfigError(f"AudioSpecificConfig truncated at bit {pos + n}")
            pos += n
            return (value >> (avail - pos)) & ((1 << n) - 1)

        object_type = take(5)
        if object_type == 31:
            object_type = 32 + take(6)
        if object_type == 0:
            raise AacConfigError("audio object type 0 (null)")
        index = take(4)
        explicit = take(24) if index == 15 else None
        if index in (13, 14):
            raise AacConfigError(f"reserved samplingFrequencyIndex {index}")
        if explicit == 0:
            raise AacConfigError("explicit sampling frequency 0")
        channels = take(4)
        return cls(object_type, index, channels, explicit)

    def __bytes__(self) -> bytes:
        fields: list[tuple[int, int]] = []
        if not 1 <= self.object_type <= 95 or self.object_type == 31:
            raise AacConfigError(f"audio object type {self.object_type} not 1..30 or 32..95")
        if self.object_type > 31:
            fields += [(31, 5), (self.object_type - 32, 6)]
        else:
            fields.append((self.object_type, 5))
        index = self.sampling_frequency_index
        if not 0 <= index <= 15 or index in (13, 14):
            raise AacConfigError(f"samplingFrequencyIndex {index} not 0..12 or 15")
        fields.append((index, 4))
        if index == 15:
            freq = self.explicit_frequency or 0
            if not 0 < freq < 1 << 24:
                raise AacConfigError(f"explicit sampling frequency {freq} not 1..2**24-1")
            fields.append((freq, 24))
        if not 0 <= self.channel_configuration <= 15:
            raise AacConfigError(f"channelConfiguration {self.channel_configuration} not 0..15")
        fields += [(self.channel_configuration, 4), (0, 3)]  # GASpecificConfig flags
        value = 0
        nbits = 0
        for field, width in fields:
            value = (value << width) | field
            nbits += width
        pad = -nbits % 8
        return (value << pad).to_bytes((nbits + pad) // 8, "big")
