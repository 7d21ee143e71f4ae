"""Realistic values that push bodies, delivery reports and webhooks share: media URLs, the
caller's reference numbers, project ids, sender names.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

__all__ = ["MEDIA", "REFERENCES", "Json"]

Json = dict[str, Any]

#: Media URLs and their kind; the first is what shrinking reaches.
MEDIA: tuple[tuple[str, str], ...] = (
    ("https://cdn.example.com/promo/banner.jpg", "image"),
    ("https://cdn.example.com/invoices/INV-2024-0042.pdf", "document"),
    ("https://cdn.example.com/video/demo.mp4", "video"),
    ("https://cdn.example.com/audio/greeting.ogg", "audio"),
    ("https://cdn.example.com/stickers/thanks.webp", "sticker"),
    ("http://example.org/img?id=7&size=large", "image"),
)


#: A caller's own id for a recipient (``reference_number``): ``"ORD-<n>"`` or a JSON integer.
REFERENCES: st.SearchStrategy[str | int] = st.one_of(
    st.integers(1, 10**9).map(lambda n: f"ORD-{n}"), st.integers(1, 10**9)
)
