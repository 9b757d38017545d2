"""A 5x7 block-letter bitmap font for name labels and placeholder tiles.

The compositor draws participant names without a font library: each glyph
is a 5-column, 7-row bitmap (``#`` ink, ``.`` blank), scaled by an integer
factor with :func:`numpy.kron`-style repetition.  Letters are upper case
(lower case is drawn as upper case); digits and common punctuation are
present; any other character (including non-Latin names) is drawn as a
hollow box, so a name's length stays visible.  A glyph advances 6 columns
(one blank column between letters).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

__all__ = ["ADVANCE", "GLYPH_HEIGHT", "GLYPH_WIDTH", "glyph", "render_text", "text_width"]

GLYPH_WIDTH = 5
GLYPH_HEIGHT = 7
ADVANCE = GLYPH_WIDTH + 1

_GLYPHS: dict[str, str] = {
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "####. #...# #...# #...# #...# #...# ####.",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    " ": "..... ..... ..... ..... ..... ..... .....",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    "-": "..... ..... ..... ##### ..... ..... .....",
    "_": "..... ..... ..... ..... ..... ..... #####",
    "'": "..#.. ..#.. .#... ..... ..... ..... .....",
    "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "/": "..... ....# ...#. ..#.. .#... #.... .....",
    "@": ".###. #...# ....# .##.# #.#.# #.#.# .###.",
    "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "&": ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
    "*": "..... ..#.. #.#.# .###. #.#.# ..#.. .....",
    "=": "..... ..... ##### ..... ##### ..... .....",
}
_MISSING = "##### #...# #...# #...# #...# #...# #####"


@lru_cache(maxsize=128)
def glyph(char: str) -> npt.NDArray[np.bool_]:
    """The 7x5 boolean bitmap of one character (upper-cased; a box when unknown)."""
    rows = _GLYPHS.get(char.upper(), _MISSING).split()
    return np.array([[c == "#" for c in row] for row in rows], dtype=np.bool_)


def text_width(text: str, scale: int = 1) -> int:
    """Pixel width of ``text`` at ``scale`` (no trailing blank column)."""
    return 0 if not text else (len(text) * ADVANCE - 1) * scale


def render_text(text: str, scale: int = 1) -> npt.NDArray[np.bool_]:
    """A ``7*scale`` x ``text_width(text, scale)`` ink mask of ``text``."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    mask = np.zeros((GLYPH_HEIGHT, max(0, len(text) * ADVANCE - 1)), dtype=np.bool_)
    for k, char in enumerate(text):
        mask[:, k * ADVANCE : k * ADVANCE + GLYPH_WIDTH] = glyph(char)
    if scale == 1:
        return mask
    return np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)
