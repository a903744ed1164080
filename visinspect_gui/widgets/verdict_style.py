"""How each verdict is shown: its words for the operator and its colour (banner, counters, timeline, tables)."""

from __future__ import annotations

from PySide6.QtGui import QColor

from engine.types import Verdict

# Table and timeline colours (RGB); the banner's own are BANNER_COLOURS below.
VERDICT_RGB = {
    Verdict.GOOD: (72, 200, 110),
    Verdict.ANOMALY: (240, 96, 96),
    Verdict.ERROR: (230, 170, 40),
    Verdict.REVIEW: (255, 140, 0),  # amber, apart from the error yellow
    Verdict.NOT_PRODUCT: (160, 130, 230),
}
VERDICT_COLOURS = {v: QColor(*rgb) for v, rgb in VERDICT_RGB.items()}
# The verdict banner's (fill, border), by its "verdict" property: a Verdict's value, or "none" while none is shown.
BANNER_COLOURS = {
    "none": (QColor("#2a2d33"), QColor("#363a41")),
    Verdict.GOOD.value: (QColor("#1c8a45"), QColor("#27a656")),
    Verdict.ANOMALY.value: (QColor("#c62f2f"), QColor("#e04848")),
    Verdict.REVIEW.value: (QColor("#c77700"), QColor("#ff8c00")),
    Verdict.NOT_PRODUCT.value: (QColor("#5a4a8f"), QColor("#a082e6")),
}
BANNER_WORDS = {Verdict.REVIEW: "NEEDS REVIEW", Verdict.NOT_PRODUCT: "NOT PRODUCT"}
LONGEST_PRODUCT_IN_BANNER = 12  # "NOT <PRODUCT>" in big letters up to this many characters, else "NOT PRODUCT"


def banner_title(verdict: Verdict, product: str = "") -> str:
    """The big words on the banner: GOOD, ANOMALY, NEEDS REVIEW, NOT <PRODUCT>."""
    if verdict is Verdict.NOT_PRODUCT and product and len(product) <= LONGEST_PRODUCT_IN_BANNER:
        return f"NOT {product.upper()}"
    return BANNER_WORDS.get(verdict, verdict.value)


def verdict_detail(verdict: Verdict, product: str = "") -> str:
    """The sentence under the big words for the verdicts that need one ('' for GOOD and ANOMALY)."""
    if verdict is Verdict.REVIEW:
        return "uncertain: a person decides"
    if verdict is Verdict.NOT_PRODUCT:
        return f"does not look like {product or 'the product'}: check the part, the camera and the lighting"
    return ""


def table_text(verdict: Verdict) -> str:
    """A verdict in a table cell or filter choice (REVIEW and NOT_PRODUCT in words an operator reads)."""
    return {Verdict.REVIEW: "NEEDS REVIEW", Verdict.NOT_PRODUCT: "NOT PRODUCT"}.get(verdict, verdict.value)
