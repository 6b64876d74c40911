"""mediagw: a real-time video gateway media server for the Livepeer network."""

__version__ = "0.1.0"
