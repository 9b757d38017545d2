from __future__ import annotations

from interlive.sfu.keyframe import KeyframeRequester


def test_many_requests_become_one_pli() -> None:
    k = KeyframeRequester(interval=1.0)
    sent = [k.request(0.0 + i * 0.01) for i in range(50)]
    assert sent.count(True) == 1 and sent[0]
    assert k.requests_coalesced == 49


def test_deferred_request_is_cancelled_by_a_keyframe() -> None:
    k = KeyframeRequester(interval=1.0)
    assert k.request(0.0)
    assert not k.request(0.2)
    assert k.get_timer() == 1.0
    k.on_keyframe()
    assert k.get_timer() is None
    assert not k.poll(1.5)


def test_deferred_request_fires_when_no_keyframe_came() -> None:
    k = KeyframeRequester(interval=1.0)
    assert k.request(0.0)
    assert not k.request(0.5)
    assert not k.poll(0.99)
    assert k.poll(1.0)
    assert not k.poll(1.1)
    assert k.requests_sent == 2
