"""Exception tree of the WebRTC library; every error carries the HTTP status it maps to.

WebRTCError                      (500) base: anything this package raises on purpose
+-- OfferError                   (400) the offer is not usable SDP (remote misbehaviour)
|   +-- UnsupportedMediaError    (422) valid SDP, but no H.264 video / unsupported codecs
+-- CapacityError                (503) session or viewer limit reached
+-- NotFoundError                (404) unknown session or stream
+-- IncompatibleAiortcError      (500) aiortc internals we rely on have changed (local)
"""

from __future__ import annotations


class WebRTCError(Exception):
    """Base of every error raised on purpose by the ``webrtc`` package."""

    http_status = 500


class OfferError(WebRTCError):
    """The SDP offer is malformed or cannot be applied."""

    http_status = 400


class UnsupportedMediaError(OfferError):
    """The offer is valid SDP but carries no media we can take (e.g. VP8 only, no video)."""

    http_status = 422


class CapacityError(WebRTCError):
    """The configured maximum number of sessions (or viewers) is reached."""

    http_status = 503


class NotFoundError(WebRTCError):
    """No such session or stream."""

    http_status = 404


class IncompatibleAiortcError(WebRTCError):
    """The installed aiortc lacks an internal this package taps (see ``webrtc.tap``)."""

    http_status = 500
