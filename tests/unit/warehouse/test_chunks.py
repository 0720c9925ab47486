"""A sync reads the log in chunks that grow to the configured size: an eighth, a quarter, a
half, then the whole of it, so the first load starts early."""

from __future__ import annotations

from itertools import islice

from projections.sinks.warehouse import _ramp


def test_the_first_chunks_ramp_up_to_the_configured_size() -> None:
    assert list(islice(_ramp(20_000), 6)) == [2_500, 5_000, 10_000, 20_000, 20_000, 20_000]
    assert list(islice(_ramp(3), 5)) == [1, 1, 1, 3, 3]
