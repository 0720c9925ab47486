"""The targets of one benchmark run. Each is checked where its figure is printed (PASS/FAIL on
that line); at the end the run prints every missed target by name and exits 1, so `make bench`
fails when a target is missed."""

from __future__ import annotations


class Targets:
    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.checked: list[str] = []
        self.missed: list[str] = []

    def check(self, name: str, passed: bool) -> str:
        """Record whether the target `name` was met; returns PASS or FAIL for the printed line."""
        self.checked.append(name)
        if not passed:
            self.missed.append(name)
        return "PASS" if passed else "FAIL"

    def exit_status(self) -> int:
        """Print the verdict; 0 when every target was met, else 1."""
        if self.missed:
            print(f"{self.bench}: MISSED {len(self.missed)} of {len(self.checked)} targets:")
            for name in self.missed:
                print(f"  - {name}")
            return 1
        print(f"{self.bench}: all {len(self.checked)} targets met")
        return 0
