"""Tests for interlive.codecs."""
