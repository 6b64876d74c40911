"""Exceptions raised by the segmenter package.

::

    SegmenterError            root: everything this package raises on bad input or mux failure
     +-- UnsupportedCodec     valid media in a codec/feature we do not handle
     +-- MalformedMedia       broken bytes: truncated tags, absurd lengths, bad parameter sets
     +-- MuxError             PyAV/FFmpeg refused to write or read a segment (translated once)

The gateway maps these onto its own ``MediaGWError`` tree; this package never imports it.
"""

from __future__ import annotations


class SegmenterError(Exception):
    """Root of every error raised by :mod:`segmenter`."""


class UnsupportedCodec(SegmenterError):
    """The input uses a codec or bitstream feature this package does not support."""


class MalformedMedia(SegmenterError):
    """The input bytes are truncated, inconsistent or exceed a hard limit."""


class MuxError(SegmenterError):
    """Writing (or probing) an MPEG-TS segment failed inside PyAV/FFmpeg."""
