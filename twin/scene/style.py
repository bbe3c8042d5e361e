"""How the scene looks: colours, the words of its labels in English and Chinese, and fonts.

Chinese labels need a font with CJK glyphs: VTK's built-in fonts have none and
draw nothing for them, silently. :func:`find_cjk_font` takes the one given or a
known one (WenQuanYi Micro Hei first: Debian package ``fonts-wqy-microhei``,
Apache-2.0 or GPL-3 with font exception, 1.6 MB), checks that it has a glyph for
every character of the labels, and otherwise raises :class:`FontError` saying
what to install.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from twin.scene.errors import FontError

RGB = tuple[int, int, int]

BACKGROUND: RGB = (255, 255, 255)
# the four warning levels, plus "none" (readings, no warning) and "no data"
LEVEL_RGB: dict[str, RGB] = {
    "none": (40, 160, 70),
    "blue": (30, 100, 230),
    "yellow": (250, 215, 0),
    "orange": (255, 135, 0),
    "red": (225, 20, 20),
    "no data": (150, 150, 150),
}
LEVEL_KEYS = ("none", "blue", "yellow", "orange", "red", "no data")
LIGHT_TEXT_ON = ("none", "blue", "red")  # legend entries written white on their colour
SITE_RGB: RGB = (250, 250, 250)
STEM_RGB: RGB = (60, 60, 60)
INCIDENT_RGB: RGB = (130, 0, 170)
# hypsometric tints (fraction of the elevation range → RGB); the top stays darker than the background
TERRAIN_STOPS: tuple[tuple[float, RGB], ...] = (
    (0.00, (70, 120, 60)),
    (0.15, (110, 150, 80)),
    (0.35, (170, 175, 105)),
    (0.55, (190, 160, 115)),
    (0.75, (150, 115, 85)),
    (0.90, (175, 160, 150)),
    (1.00, (235, 235, 235)),
)
RIVER_RGB: tuple[RGB, ...] = ((130, 195, 240), (70, 150, 225), (30, 105, 200), (15, 70, 170), (10, 40, 130))
BOUNDARY_RGB: tuple[RGB, ...] = ((70, 20, 90), (110, 70, 130), (140, 130, 150))
PLUME_STOPS: tuple[tuple[float, RGB], ...] = (
    (0.0, (255, 240, 110)),
    (0.35, (255, 160, 0)),
    (0.7, (220, 30, 20)),
    (1.0, (110, 0, 90)),
)
# sizes in thousandths of the width the camera sees at its focal point
SITE_RADIUS = 6.0
INCIDENT_HEIGHT = 24.0
RIVER_RADIUS = (0.6, 0.4)  # order rank k: 0.6 + 0.4 k
PLUME_RADIUS = 3.0

TEXTS: dict[str, dict[str, Any]] = {
    "en": {
        "levels": {
            "none": "no warning",
            "blue": "blue",
            "yellow": "yellow",
            "orange": "orange",
            "red": "red",
            "no data": "no data",
        },
        "legend": "Warning level",
        "incident": "Incident {id}: {kind}",
        "kinds": {
            "spill": "spill",
            "illegal_discharge": "illegal discharge",
            "sand_mining": "sand mining",
            "waste_dumping": "waste dumping",
            "fish_kill": "fish kill",
            "other": "other",
        },
    },
    "zh": {
        "levels": {
            "none": "无预警",
            "blue": "蓝色预警",
            "yellow": "黄色预警",
            "orange": "橙色预警",
            "red": "红色预警",
            "no data": "无数据",
        },
        "legend": "预警等级",
        "incident": "事件 {id}：{kind}",
        "kinds": {
            "spill": "泄漏",
            "illegal_discharge": "非法排放",
            "sand_mining": "非法采砂",
            "waste_dumping": "倾倒废物",
            "fish_kill": "死鱼",
            "other": "其他",
        },
    },
}
LANGS = tuple(TEXTS)

CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # Debian/Ubuntu fonts-wqy-microhei
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",  # Fedora wqy-microhei-fonts
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)


def needs_cjk_font(texts: list[str]) -> bool:
    """Whether any text has characters beyond Latin-1 (all that VTK's built-in fonts draw)."""
    return any(ord(ch) > 0xFF for t in texts for ch in t)


def find_cjk_font(font_file: str | Path | None = None, texts: tuple[str, ...] = ()) -> Path:
    """A font file with a glyph for every character of ``texts``: the one given, else a known CJK font.

    Raises
    ------
    FontError
        The file given is missing, not a font or lacks glyphs; or no CJK font is installed.
    """
    if font_file is not None:
        path = Path(font_file)
        if not path.is_file():
            raise FontError(f"font file '{path}' does not exist; give a .ttf/.ttc/.otf with Chinese glyphs")
        missing = missing_glyphs(path, texts)
        if missing:
            raise FontError(f"font '{path}' has no glyph for {''.join(missing)!r}; give a font with Chinese glyphs")
        return path
    for path in [Path(p) for p in CJK_FONTS] + _fontconfig_cjk():
        if path.is_file() and not missing_glyphs(path, texts):
            return path
    raise FontError(
        "no font with Chinese glyphs found for the labels (looked for "
        + ", ".join(CJK_FONTS)
        + " and asked fontconfig); install one with `apt-get install fonts-wqy-microhei` (Debian/Ubuntu), "
        "or pass font_file= (--font on the command line), or use English labels"
    )


def _fontconfig_cjk() -> list[Path]:
    """Fonts that fontconfig lists as covering Chinese, sorted (so the choice is stable)."""
    if shutil.which("fc-list") is None:
        return []
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({Path(line.split(":")[0].strip()) for line in out.stdout.splitlines() if line.strip()})


def missing_glyphs(path: Path, texts: tuple[str, ...]) -> list[str]:
    """Characters of ``texts`` without a glyph in the font's first face (the face VTK loads)."""
    from fontTools.ttLib import TTFont  # fontTools comes with matplotlib, which pyvista requires

    try:
        with TTFont(str(path), fontNumber=0, lazy=True) as font:
            cmap = font.getBestCmap() or {}
    except Exception as err:  # fontTools raises many kinds of error on a file that is not a font
        raise FontError(f"'{path}' is not a readable font ({err}); give a .ttf/.ttc/.otf file") from None
    return sorted({ch for t in texts for ch in t if ch.isprintable() and not ch.isspace() and ord(ch) not in cmap})
