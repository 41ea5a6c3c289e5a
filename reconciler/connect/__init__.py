"""Talking to Amazon Connect: client, quota pacing, live-state reader, writer."""
