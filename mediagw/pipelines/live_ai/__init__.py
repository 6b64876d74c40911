"""Live AI video-to-video (live-ai spec): session health rules, events, control, swaps."""
