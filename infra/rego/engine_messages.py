"""Reading regorus error texts: `--> file:line:col`, an excerpt, `error: message`, a backtrace."""

from __future__ import annotations


def compile_error_position(message: str) -> tuple[int, int]:
    for line in message.splitlines():
        stripped = line.strip()
        if stripped.startswith("-->"):
            parts = stripped[3:].strip().rsplit(":", 2)
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                return int(parts[1]), int(parts[2])
    return 0, 0


def error_summary(message: str) -> str:
    """The `error: ...` line with its position, without the excerpt and the backtrace."""
    line, column = compile_error_position(message)
    for text in message.splitlines():
        stripped = text.strip()
        if stripped.startswith("error:"):
            where = f"line {line}, column {column}: " if line else ""
            return where + stripped[len("error:") :].strip()
    first = message.strip().splitlines()
    return first[0] if first else "unknown engine error"
