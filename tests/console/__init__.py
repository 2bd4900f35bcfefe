"""Helpers for driving the web console in a real headless Chromium (tests/test_console.py)."""
