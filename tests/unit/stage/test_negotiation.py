"""Negotiation: the server's offer/answer state on one peer connection, with glare."""

from __future__ import annotations

import pytest

from interlive.stage.negotiation import Negotiation, SignalingState


def test_one_offer_at_a_time_and_wishes_meanwhile_are_kept() -> None:
    n = Negotiation()
    assert n.want_offer() and n.offer_due
    offer = n.offer_made()
    assert offer == "srv-1" and n.state is SignalingState.HAVE_LOCAL_OFFER and not n.offer_due
    assert not n.want_offer()  # remembered, not now
    with pytest.raises(RuntimeError):
        n.offer_made()
    assert not n.answer("srv-0") and not n.answer(None)  # stale or unnamed: refused
    assert n.answer(offer) and n.state is SignalingState.STABLE
    assert n.offer_due  # the wish made while waiting
    assert n.offer_made() == "srv-2"


def test_nothing_to_offer_settles() -> None:
    n = Negotiation()
    n.want_offer()
    n.nothing_to_offer()
    assert not n.offer_due and n.state is SignalingState.STABLE


def test_glare_the_client_wins_and_the_server_offers_again() -> None:
    n = Negotiation()
    n.want_offer()
    offer = n.offer_made()
    assert n.client_offer()  # crossed: roll ours back
    assert n.state is SignalingState.STABLE and n.outstanding is None
    assert not n.answer(offer)  # an answer to the rolled-back offer changes nothing
    assert n.offer_due
    assert not Negotiation().client_offer()  # no glare when stable


def test_abandon_and_reset_start_over() -> None:
    n = Negotiation(prefix="x")
    n.want_offer()
    n.offer_made()
    n.abandon()
    assert n.offer_due and n.outstanding is None
    n.nothing_to_offer()
    n.reset()
    assert n.offer_due and n.offer_made() == "x2"
