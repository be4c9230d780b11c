"""Labelled contact sheets: results laid out on a row axis × column axis, as one PNG.

Used by the Compare page to show how a batch varies along two axes (content, style or a
swept setting). Pure PIL, so it also works from a script.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
BACKGROUND = (255, 255, 255)
EMPTY_CELL = (235, 235, 235)
TEXT = (30, 30, 30)
MUTED = (110, 110, 110)


def _font(size: int, bold: bool = False) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """DejaVu where installed, else PIL's built-in font (scalable since Pillow 10.1)."""
    path = FONT_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    try:
        return ImageFont.truetype(str(path), size)
    except OSError:
        return ImageFont.load_default(size)


def _fit_text(draw: ImageDraw.ImageDraw, text: str,
              font: ImageFont.ImageFont | ImageFont.FreeTypeFont, max_width: int) -> str:
    """Shorten text with an ellipsis until it fits in max_width pixels (titles only: axis
    labels wrap instead, so names are never cut)."""
    if draw.textlength(text, font=font) <= max_width:
        return text
    while text and draw.textlength(text + "…", font=font) > max_width:
        text = text[:-1]
    return text + "…"


def _wrap(draw: ImageDraw.ImageDraw, text: str,
          font: ImageFont.ImageFont | ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    """Lines of at most max_width pixels, broken at spaces where possible, else anywhere."""
    lines: list[str] = []
    for word in text.split(" "):
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(candidate, font=font) <= max_width:
            lines[-1] = candidate
            continue
        while draw.textlength(word, font=font) > max_width and len(word) > 1:
            cut = len(word)
            while cut > 1 and draw.textlength(word[:cut], font=font) > max_width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return lines or [""]


def contact_sheet(cells: Mapping[tuple[int, int], Image.Image], row_labels: Sequence[str],
                  column_labels: Sequence[str], *, cell_size: int = 256,
                  row_title: str = "", column_title: str = "", title: str = "",
                  gap: int = 8, notes: Mapping[tuple[int, int], str] | None = None
                  ) -> Image.Image:
    """A grid image: cells[(row, column)] scaled to fit cell_size, labels on the top and left.

    Missing cells are drawn as grey squares with their note ("canceled", "not run"), so gaps
    in a batch stay visible and explained. Labels wrap onto several lines; none is cut."""
    notes = notes or {}
    label_font, title_font = _font(max(12, cell_size // 14)), _font(max(14, cell_size // 11), True)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line = int(label_font.size * 1.5) if hasattr(label_font, "size") else 16
    row_width = min(2 * cell_size, max([math.ceil(probe.textlength(t, font=label_font)) + 1
                                         for t in row_labels] + [40]))
    left = row_width + 2 * gap
    column_lines = [_wrap(probe, t, label_font, cell_size) for t in column_labels]
    header = line * max([len(lines) for lines in column_lines] + [1])
    title_height = int(line * 1.4) if title else 0
    top = title_height + header + (line if column_title else 0) + gap
    left += line if row_title else 0
    width = left + len(column_labels) * (cell_size + gap) + gap
    if title:  # the sheet is at least as wide as its title: a narrow grid never cuts it
        width = max(width, math.ceil(probe.textlength(title, font=title_font)) + 2 * gap + 1)
    height = top + len(row_labels) * (cell_size + gap) + gap
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((gap, gap // 2), _fit_text(draw, title, title_font, width - 2 * gap),
                  font=title_font, fill=TEXT)
    if column_title:
        draw.text((left, title_height), column_title + " →", font=label_font, fill=TEXT)
    if row_title:
        rotated = Image.new("RGB", (height - top, line), BACKGROUND)
        ImageDraw.Draw(rotated).text((gap, 0), row_title + " →", font=label_font, fill=TEXT)
        sheet.paste(rotated.rotate(90, expand=True).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
                    .transpose(Image.Transpose.FLIP_LEFT_RIGHT), (0, top))
    for c, lines in enumerate(column_lines):
        x = left + c * (cell_size + gap)
        for i, text in enumerate(lines):
            draw.text((x + (cell_size - draw.textlength(text, font=label_font)) / 2,
                       top - header + i * line), text, font=label_font, fill=TEXT)
    for r, label in enumerate(row_labels):
        y = top + r * (cell_size + gap)
        lines = _wrap(draw, label, label_font, row_width)
        for i, text in enumerate(lines):
            draw.text((left - gap - draw.textlength(text, font=label_font),
                       y + cell_size / 2 + (i - (len(lines) - 1) / 2) * line),
                      text, font=label_font, fill=TEXT, anchor="lm")
        for c in range(len(column_labels)):
            x = left + c * (cell_size + gap)
            image = cells.get((r, c))
            if image is None:
                draw.rectangle([x, y, x + cell_size - 1, y + cell_size - 1], fill=EMPTY_CELL)
                note = notes.get((r, c), "not in this batch")
                draw.text((x + cell_size / 2, y + cell_size / 2), note, font=label_font,
                          fill=MUTED, anchor="mm")
                continue
            thumb = _fit(image.convert("RGB"), cell_size)
            sheet.paste(thumb, (x + (cell_size - thumb.width) // 2,
                                y + (cell_size - thumb.height) // 2))
    return sheet


def _fit(image: Image.Image, size: int) -> Image.Image:
    """Scale to fit a size×size cell, up or down, keeping the aspect ratio."""
    factor = size / max(image.size)
    return image.resize((max(1, round(image.width * factor)),
                         max(1, round(image.height * factor))), Image.Resampling.LANCZOS)


def stack(sheets: Sequence[Image.Image], gap: int = 16) -> Image.Image:
    """Sheets one under another on the background, left-aligned: a split grid as one PNG."""
    if len(sheets) == 1:
        return sheets[0]
    width = max(s.width for s in sheets)
    height = sum(s.height for s in sheets) + gap * (len(sheets) - 1)
    out = Image.new("RGB", (width, height), BACKGROUND)
    y = 0
    for sheet in sheets:
        out.paste(sheet.convert("RGB"), (0, y))
        y += sheet.height + gap
    return out


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
