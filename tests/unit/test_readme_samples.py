"""The README's sample token starts the way every token the service issues starts (its JOSE
header), so a reader can tell the printed token from anything else."""

from __future__ import annotations

import re
from pathlib import Path

from infra.tokens import KeyRing
from infra.tokens.issuer import TokenIssuer

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_sample_token_has_the_issued_tokens_header(tmp_path: Path) -> None:
    samples = set(re.findall(r"(eyJ[A-Za-z0-9_-]+)\.\.\.", README.read_text()))
    assert samples
    ring = KeyRing(tmp_path / "keys")
    ring.ensure()
    token, _ = TokenIssuer(ring).sign({"sub": "reader", "exp": 4102444800})
    for sample in samples:
        assert token.startswith(sample), (sample, token[:40])
