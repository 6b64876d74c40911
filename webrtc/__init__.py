"""WebRTC (WHIP ingest, WHEP egress) on aiortc. Not built yet: see the live AI issue."""
