from __future__ import annotations

import numpy as np

from interlive.mix.font import _GLYPHS, glyph, render_text, text_width


def test_glyph_bitmap() -> None:
    assert glyph("A").astype(int).tolist() == [
        [0, 1, 1, 1, 0],
        [1, 0, 0, 0, 1],
        [1, 0, 0, 0, 1],
        [1, 1, 1, 1, 1],
        [1, 0, 0, 0, 1],
        [1, 0, 0, 0, 1],
        [1, 0, 0, 0, 1],
    ]


def test_every_glyph_is_five_by_seven() -> None:
    for char, rows in _GLYPHS.items():
        parts = rows.split()
        assert len(parts) == 7, char
        assert all(len(p) == 5 and set(p) <= {"#", "."} for p in parts), char


def test_lower_case_and_unknown_characters() -> None:
    assert np.array_equal(glyph("q"), glyph("Q"))
    box = glyph("张")
    assert box[0].all() and box[-1].all() and box[:, 0].all() and box[:, -1].all()
    assert not box[1:-1, 1:-1].any()


def test_render_text_spacing_and_scale() -> None:
    mask = render_text("HI")
    assert mask.shape == (7, 11)
    assert np.array_equal(mask[:, :5], glyph("H"))
    assert not mask[:, 5].any()
    assert np.array_equal(mask[:, 6:], glyph("I"))
    big = render_text("HI", 3)
    assert big.shape == (21, 33) and text_width("HI", 3) == 33
    assert np.array_equal(big[::3, ::3], mask)
    assert render_text("").shape == (7, 0) and text_width("") == 0
