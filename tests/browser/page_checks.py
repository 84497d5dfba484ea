"""Accessibility checks run inside the page: labels, contrast, a visible focus. Any page of the
site can be checked: `unlabelled_controls(page)`, `low_contrast_text(page)`, `focus_shown(page)`,
and `faces(page, selector)` for one type across a form's controls or hints."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

_UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(el => el.type !== 'hidden')
  .filter(el => !((el.labels && [...el.labels].some(l => l.textContent.trim()))
                  || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
                  || (el.tagName === 'BUTTON' && el.textContent.trim())))
  .map(el => el.outerHTML)"""

# WCAG 2.2 AA, 1.4.3: 4.5:1 for text, 3:1 for large text, against the colours behind it.
_LOW_CONTRAST = """(focusedOnly) => {
  const parse = c => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a),
    g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1});
  const lum = c => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const behind = el => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    const white = {r: 255, g: 255, b: 255, a: 1};
    return layers.reverse().reduce((under, top) => over(top, under), white);
  };
  const active = document.activeElement;
  const elements = focusedOnly ? [active, ...active.querySelectorAll('*')]
                               : document.querySelectorAll('body *');
  const low = [];
  for (const el of elements) {
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const s = getComputedStyle(el), box = el.getBoundingClientRect();
    if (s.visibility === 'hidden' || box.width < 2 || box.height < 2 || box.bottom < 0) continue;
    const bg = behind(el), fg = over(parse(s.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05), size = parseFloat(s.fontSize);
    const large = size >= 24 || (parseInt(s.fontWeight) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) {
      const text = el.textContent.trim().slice(0, 30);
      low.push(`${el.tagName}.${el.className} "${text}": ${ratio.toFixed(2)}`);
    }
  }
  return low;
}"""

_FOCUS = """() => {
  const el = document.activeElement, s = getComputedStyle(el);
  const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2
    && !/rgba\\([^)]*,\\s*0\\)|transparent/.test(s.outlineColor);
  return {tag: el.tagName, text: (el.textContent || el.name || '').trim().slice(0, 40),
          shown: outline || s.boxShadow !== 'none'};
}"""


_FONTS = """selector => [...document.querySelectorAll(selector)]
  .filter(el => el.type !== 'hidden' && el.getClientRects().length)
  .map(el => { const s = getComputedStyle(el);
               return {what: el.tagName.toLowerCase() + (el.id ? '#' + el.id : '.' + el.className),
                       family: s.fontFamily, size: s.fontSize}; })"""


def faces(page: Page, selector: str) -> dict[tuple[str, str], list[str]]:
    """Which visible elements matching `selector` wear which (font-family, font-size)."""
    found: dict[tuple[str, str], list[str]] = {}
    for element in page.evaluate(_FONTS, selector):
        found.setdefault((element["family"], element["size"]), []).append(element["what"])
    return found


def unlabelled_controls(page: Page) -> list[str]:
    """Form controls a screen reader could not name (no label, aria-label or text)."""
    return list(page.evaluate(_UNLABELLED))


def low_contrast_text(page: Page, *, focused_only: bool = False) -> list[str]:
    """Visible text below WCAG AA contrast, on the whole page or in the focused element."""
    return list(page.evaluate(_LOW_CONTRAST, focused_only))


def focus_shown(page: Page) -> dict[str, Any]:
    """The focused element, and whether it wears a visible outline or ring (`shown`)."""
    return dict(page.evaluate(_FOCUS))
