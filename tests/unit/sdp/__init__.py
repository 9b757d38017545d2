"""Tests of interlive.sdp: parsing, validation, negotiation, answers, sdpfrag."""
