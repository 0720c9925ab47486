"""What gap detectors need to know about a Rego module, read from its text.

Rule heads and references are recognised line by line (comments dropped). This is deliberately
shallow: it reads the shapes the converter writes and the common hand-written ones.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RegoFacts:
    file: str
    package: str
    code_lines: tuple[str, ...]

    @property
    def code(self) -> str:
        return "\n".join(self.code_lines)

    def has(self, text: str) -> bool:
        return any(text in line for line in self.code_lines)


def rego_facts(file: str, module: str) -> RegoFacts:
    lines: list[str] = []
    for raw in module.splitlines():
        code = raw.split("#", 1)[0] if "#" in raw and '"' not in raw.split("#", 1)[0] else raw
        if code.strip():
            lines.append(code.rstrip())
    package = next(
        (line.split(None, 1)[1].strip() for line in lines if line.startswith("package ")), ""
    )
    return RegoFacts(file, package, tuple(lines))
