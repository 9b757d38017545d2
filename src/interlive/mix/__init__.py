"""Sans-IO cores of the bypass-live mixer (MCU): geometry, timing, sync, gating, mixing.

Each module is pure (numbers, arrays and ``now`` in; decisions and arrays out)
so the mixer process that drives them (PyAV decode/encode, asyncio) stays thin:

* :mod:`~interlive.mix.layout` - layouts (grid, speaker, pip, custom) and the REST ``layout`` field;
* :mod:`~interlive.mix.clock` - the single output clock (video and audio pts, skipping when late);
* :mod:`~interlive.mix.sync` - inputs' RTP time to the output clock via RTCP SR, frame choice;
* :mod:`~interlive.mix.clearframe` - never compose a frame whose references were lost;
* :mod:`~interlive.mix.audio` - per-input gain, sum, soft limiter (no clipping);
* :mod:`~interlive.mix.compose` - paste scaled I420 pictures, placeholders, labels, watermark;
* :mod:`~interlive.mix.font` - a 5x7 bitmap font for name labels (no font dependency).

See docs/mixer.md for how they fit together.
"""
