"""What one backend's rounds found, and how it is printed."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Report:
    backend: str
    rounds: int = 0
    signals: Counter[str] = field(default_factory=Counter)
    kills_confirmed: int = 0  # Confirm pressed just before the crash
    kills_recorded: int = 0  # ... and the confirmation was used before the process died
    last_signal: float | None = None  # monotonic time of the last round's signal
    last_signal_wall: float = 0.0
    phases: list[tuple[float, float, float]] = field(default_factory=list)  # boot, lease, engine (s after the signal)
    sigkills: list[float] = field(default_factory=list)  # monotonic times
    repeats: list[str] = field(default_factory=list)  # alerts repeated by a SIGKILL between post and mark
    outages: int = 0
    outage_recovery_s: list[float] = field(default_factory=list)  # database back -> next processed candle
    recovery_s: list[float] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    manual_typed: Counter[str] = field(default_factory=Counter)  # manual rounds by kind (manual.KINDS)
    manual_confirmed: Counter[str] = field(default_factory=Counter)  # ... whose confirmation was pressed
    manual_recorded: int = 0  # ... and recorded as confirmed before the process died
    manual_executed: int = 0  # ... and recorded as executed before it died
    manual_orders_at_crash: int = 0  # order rows their commands had written before it died
    manual_orders: int = 0  # manual orders at the end (setup commands' included)
    cancels_finished: int = 0  # confirmed /cancel all whose orders the crash left open, none open after the restart

    def lines(self) -> list[str]:
        rec = self.recovery_s
        signals = ", ".join(f"{k} {v}" for k, v in sorted(self.signals.items()))
        head = (f"{self.backend}: {self.rounds} rounds ({signals}), "
                f"{self.kills_confirmed} kills confirmed just before a crash "
                f"({self.kills_recorded} recorded before it), "
                f"{len(self.violations)} violations")
        lines = [head]
        if self.manual_typed:
            kinds = ", ".join(f"{k} {self.manual_confirmed[k]}/{v}" for k, v in sorted(self.manual_typed.items()))
            lines.append(f"  manual orders confirmed just before a crash (confirmed/rounds): {kinds}; "
                         f"{self.manual_recorded} recorded confirmed, {self.manual_executed} recorded executed, "
                         f"{self.manual_orders_at_crash} with their order written before the crash; "
                         f"{self.manual_orders} manual orders in all; {self.cancels_finished} /cancel all "
                         "left undone by the crash, none of its orders open after the restart")
        if rec:
            lines.append(f"  recovery (signal -> first processed candle): median {statistics.median(rec):.2f} s, "
                         f"max {max(rec):.2f} s, min {min(rec):.2f} s (n={len(rec)})")
        if self.outages:
            back = self.outage_recovery_s
            lines.append(f"  {self.outages} database outages; database back -> next candle: "
                         + (f"median {statistics.median(back):.2f} s, max {max(back):.2f} s" if back else "never"))
        if self.phases:
            boot, lease, engine = (statistics.median(p[i] for p in self.phases) for i in range(3))
            lines.append(f"  medians after the signal: first log line {boot:.2f} s, leader {lease:.2f} s, "
                         f"engine started {engine:.2f} s")
        lines += [f"  VIOLATION {v}" for v in self.violations]
        lines += [f"  repeated by a SIGKILL between the post and its mark (docs/alerts.md): {r}" for r in self.repeats]
        return lines

