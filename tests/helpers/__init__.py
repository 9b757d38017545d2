"""Test utilities: a real interlive server in a subprocess and a real Chromium."""
