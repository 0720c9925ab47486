"""A sync reads the log in chunks that grow to the configured size: an eighth, a quarter, a
half, then the whole of it, so the first load starts early; near the head of the log they
shrink again (half of what is left, down to an eighth), so the last load, which nothing
overlaps, is short. For a warehouse whose loads are best whole multiples of a unit (DuckDB's
row groups), a chunk of a unit or more is a whole multiple of it."""

from __future__ import annotations

from itertools import islice

from projections.sinks.warehouse import CHUNK, _aligned, _ramp, _tapered


def test_the_first_chunks_ramp_up_to_the_configured_size() -> None:
    assert list(islice(_ramp(20_000), 6)) == [2_500, 5_000, 10_000, 20_000, 20_000, 20_000]
    assert list(islice(_ramp(3), 5)) == [1, 1, 1, 3, 3]


def test_the_last_chunks_taper_to_an_eighth_of_the_configured_size() -> None:
    assert _tapered(20_000, 1_000_000, 20_000) == 20_000  # far from the head
    assert _tapered(20_000, 32_501, 20_000) == 16_251  # half of what is left, rounded up
    assert _tapered(2_500, 32_501, 20_000) == 2_500  # never above the ramp
    assert _tapered(20_000, 3_000, 20_000) == 2_500  # never below an eighth
    assert _tapered(20_000, 10, 20_000) == 2_500  # (the read stops at the head)
    assert _tapered(1, 1, 1) == 1


def test_a_chunk_of_a_load_unit_or_more_is_a_whole_multiple_of_it() -> None:
    assert _aligned(20_480, 10_240) == 20_480
    assert _aligned(16_251, 10_240) == 10_240  # rounded down
    assert _aligned(10_239, 10_240) == 10_239  # below one unit: as it is
    assert _aligned(2_560, 10_240) == 2_560
    assert _aligned(16_251, 1) == 16_251  # any count
    assert [_aligned(size, 10_240) for size in islice(_ramp(CHUNK), 5)] == [
        2_560,
        5_120,
        10_240,
        20_480,
        20_480,
    ]
