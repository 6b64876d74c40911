"""Ingest servers: media pushed into the gateway by publishers (RTMP today)."""
