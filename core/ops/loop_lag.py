"""Event-loop lag, measured continuously: how late a task that asked to sleep 0.5 s wakes up.

A blocked loop (a synchronous call, a CPU-bound step) is what makes a leader miss its lease renewal, so
the figure is exported as a metric, shown by ``/livez`` (:mod:`core.ops.metrics`) and by ``/health`` in chat
(the ``event-loop`` component, :class:`LoopLagWatch`), and alerted in chat: :class:`LagAlarm` raises
one :class:`EventLoopLagging` alert when the lag stays at or above ``service.loop_lag_alert_ms`` for
``service.loop_lag_alert_for_s``, and one :class:`EventLoopRecovered` notice once it has stayed below
half the threshold for as long again. The half is the hysteresis: a lag hovering around the threshold
raises one alert, not one a minute. The measuring task runs under a
:class:`~core.runtime.lifecycle.Supervisor` of its own and never fails the service.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from core.runtime.lifecycle import Supervisor
from core.trading.events import Event

if TYPE_CHECKING:
    from core.ops.components import ComponentHealth

log = logging.getLogger("tradectl.loop_lag")
TASK = "loop-lag"
COMPONENT = "event-loop"


@dataclass(frozen=True, slots=True)
class LoopLag:
    """The latest oversleep, its moving average (EWMA) and the largest one within ``window_s``, in seconds."""

    last_s: float
    ewma_s: float
    max_s: float
    window_s: float


class LoopLagMonitor:
    """Sleeps ``interval_s`` over and over and records how much longer each sleep took.

    ``alpha`` weighs the newest sample in the moving average (0.2: about the last five samples count).
    ``clock`` is injectable so the arithmetic can be tested without a blocked loop."""

    name = "loop-lag"

    def __init__(self, *, interval_s: float = 0.5, window_s: float = 60.0, alpha: float = 0.2,
                 clock: Callable[[], float] = time.monotonic,
                 on_sample: Callable[[float], Awaitable[None]] | None = None) -> None:
        self.on_sample = on_sample  # awaited after each sample, between measurements (never inside one)
        self.interval_s = interval_s
        self.window_s = window_s
        self.alpha = alpha
        self._clock = clock
        self._samples: deque[tuple[float, float]] = deque()
        self._last = 0.0
        self._ewma: float | None = None
        self._tasks = Supervisor("loop-lag")

    def record(self, lag_s: float) -> None:
        """Add one sample (negative oversleeps, which a coarse clock can give, count as zero)."""
        lag = max(0.0, lag_s)
        now = self._clock()
        self._last = lag
        self._ewma = lag if self._ewma is None else self.alpha * lag + (1 - self.alpha) * self._ewma
        self._samples.append((now, lag))
        while self._samples and self._samples[0][0] < now - self.window_s:
            self._samples.popleft()

    def current(self) -> LoopLag:
        now = self._clock()
        recent = [lag for at, lag in self._samples if at >= now - self.window_s]
        return LoopLag(last_s=self._last, ewma_s=self._ewma or 0.0, max_s=max(recent, default=0.0),
                       window_s=self.window_s)

    @property
    def running(self) -> bool:
        return self._tasks.task(TASK) is not None

    async def start(self) -> None:
        if self._tasks.task(TASK) is None:
            self._tasks.spawn(TASK, self._measure())

    async def stop(self) -> None:
        await self._tasks.stop()

    async def _measure(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.interval_s)
            lag = time.monotonic() - before - self.interval_s
            self.record(lag)
            if self.on_sample is not None:
                try:
                    await self.on_sample(max(0.0, lag))
                except Exception:  # the measurement goes on whatever a listener does
                    log.warning("loop-lag listener failed", exc_info=True)


@dataclass(frozen=True, kw_only=True)
class EventLoopLagging(Event):
    """The event loop stayed late for a sustained time: timers, lease renewals and chat replies run late."""

    kind: ClassVar[str] = "event_loop_lag"
    severity: ClassVar[str] = "warning"
    lag_ms: float
    threshold_ms: float
    for_s: float

    def summary(self) -> str:
        return (f"event loop lagging: {self.lag_ms:.0f} ms late on average for {self.for_s:.0f} s (alert at "
                f"{self.threshold_ms:.0f} ms); a leader this slow may lose its lease")


@dataclass(frozen=True, kw_only=True)
class EventLoopRecovered(Event):
    kind: ClassVar[str] = "event_loop_recovered"
    lag_ms: float
    lagged_s: float

    def summary(self) -> str:
        return f"event loop back to normal ({self.lag_ms:.0f} ms) after lagging for {self.lagged_s:.0f} s"


class LagAlarm:
    """The hysteresis, as a pure state machine fed one sample at a time (``now`` in monotonic seconds).

    The signal is the moving average (EWMA) of the lag. It is *high* at or above ``threshold_s``, *low*
    below half of it. The alarm is raised once the signal has been high for ``for_s``, and cleared once it
    has been low for ``for_s``; in between (or while it wanders between the two levels) nothing happens. A
    single stall counts for its own length: a 40 s block reported by one late wake-up has been high
    for 40 s by itself."""

    def __init__(self, *, threshold_s: float, for_s: float) -> None:
        self.threshold_s = threshold_s
        self.for_s = for_s
        self.raised_at: float | None = None  # when the raised alarm's high period began
        self._high_since: float | None = None
        self._low_since: float | None = None

    @property
    def raised(self) -> bool:
        return self.raised_at is not None

    def observe(self, now: float, lag_s: float, ewma_s: float) -> Event | None:
        """The alert to send for this sample (at most one per change), or None."""
        if ewma_s >= self.threshold_s:
            self._low_since = None
            began = now - max(lag_s, 0.0)  # the stall itself was high all along
            self._high_since = began if self._high_since is None else min(self._high_since, began)
            if self.raised_at is None and now - self._high_since >= self.for_s:
                self.raised_at = self._high_since
                return EventLoopLagging(lag_ms=ewma_s * 1000, threshold_ms=self.threshold_s * 1000,
                                        for_s=now - self._high_since)
            return None
        if ewma_s < self.threshold_s / 2:
            self._high_since = None
            self._low_since = now if self._low_since is None else self._low_since
            if self.raised_at is not None and now - self._low_since >= self.for_s:
                lagged, self.raised_at = self._low_since - self.raised_at, None
                return EventLoopRecovered(lag_ms=ewma_s * 1000, lagged_s=max(0.0, lagged))
            return None
        # between the two levels: neither raises nor clears; a dip under the threshold restarts the
        # sustained count of an alarm not yet raised
        self._low_since = None
        if self.raised_at is None:
            self._high_since = None
        return None


class LoopLagWatch:
    """The component that measures the lag all the time (metrics or not), shows it in ``/health`` (the
    ``event-loop`` component with the figures, marked LAGGING while the alarm is raised) and announces the
    alarm's alerts through the outbox. A slow loop is not a dead one: the component stays ``up``, so
    neither ``tradectl health`` (Docker's HEALTHCHECK) nor ``/livez`` fails over it and no orchestrator
    restarts a replica that is only starved of CPU; the chat alert and the Prometheus rule say it.

    ``announce`` is ``EventBus.announce`` bound to the database: an alert the database cannot take is held
    and shown locally. It runs in a task of its own, so a slow database never delays the measurement."""

    name = "loop-lag-watch"

    def __init__(self, monitor: LoopLagMonitor, alarm: LagAlarm, health: ComponentHealth,
                 announce: Callable[[Event], Coroutine[Any, Any, None]], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.monitor = monitor
        self.alarm = alarm
        self._health = health
        self._announce = announce
        self._clock = clock
        self._shown = ""
        self._tasks = Supervisor("loop-lag-alerts")
        self._sent = 0
        monitor.on_sample = self.sample

    async def start(self) -> None:
        self._show()
        await self.monitor.start()

    async def stop(self) -> None:
        await self.monitor.stop()
        await self._tasks.stop()
        self._health.remove(COMPONENT)

    async def sample(self, lag_s: float) -> None:
        cur = self.monitor.current()
        event = self.alarm.observe(self._clock(), lag_s, cur.ewma_s)
        if event is not None:
            self._sent += 1
            self._tasks.spawn(f"loop-lag:alert:{self._sent}", self._announce(event))
        self._show()

    def _show(self) -> None:
        """Report the figures; the registry ignores a report that changes nothing (whole milliseconds)."""
        cur = self.monitor.current()
        text = f"lag {cur.ewma_s * 1000:.0f} ms average, {cur.max_s * 1000:.0f} ms max in {cur.window_s:.0f} s"
        self._health.up(COMPONENT, f"LAGGING (alerted): {text}" if self.alarm.raised else text)
