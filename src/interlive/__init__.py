"""interlive: interactive live streaming built on video-conferencing technology."""

__version__ = "0.1.0"
