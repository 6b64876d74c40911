"""Benchmarks (``mediagw bench ...``): not tests; they report figures."""

# ``mediagw bench live``: its phases, and where the AI output's LL-HLS playlist is ({id}: the
# output stream, NAME-out). Change the URL here (or with --ll-url-template).
LIVE_PHASES = ("gateway", "whip", "rtmp", "hls", "swap")
LL_URL_TEMPLATE = "/stream/{id}/ll/index.m3u8"
