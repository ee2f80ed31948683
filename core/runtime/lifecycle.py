"""Explicit lifecycles: components with start/stop, and a supervisor that owns every task.

A component's ``start()`` returns once it is running; ``stop()`` is safe to call twice and after a
failed start. The :class:`Supervisor` names every background task, logs its failure, and reports
it so the service can stop instead of limping on with a dead task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Protocol

from exchanges.errors import TradectlError

log = logging.getLogger("tradectl.lifecycle")


class Component(Protocol):
    name: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class TaskFailed(TradectlError):
    """A supervised task ended with an exception (``original``); the message names the task."""

    def __init__(self, name: str, exc: BaseException) -> None:
        super().__init__(f"task {name!r} failed: {exc!r}")
        self.task_name = name
        self.original = exc


class Supervisor:
    """Owns named tasks. A task that raises is logged and reported through ``on_failure``.

    Every background task of the service runs under a supervisor (or inside a component's own
    ``asyncio.TaskGroup``), under a name that says whose it is (``leader:lease``, ``heartbeat``,
    ``scheduler:daily_report:2024-06-01T06:00:00+00:00``). Nothing is restarted in-process; the policy
    for a task that crashes is, per component:

    * **long-lived loops stop the service with exit 1** — the leader's lease loop (it also starts the
      leader work after each re-election: an instance whose trading core cannot start must not stay
      up as a silent follower), the trading core's engine tasks, the chat adapters' connections
      (Discord, Slack), the heartbeat and the component-health publisher. Their ``on_failure`` is the
      service's (:func:`core.app.app.run_service`): it logs
      ``stopped because task '…' failed``, stops every component in reverse order and exits 1, so
      the process manager (systemd ``Restart=on-failure``, Docker's restart policy) starts a fresh
      process that rebuilds its state from the database. The loops retry what is expected to fail
      (a database or a platform that does not answer) themselves, so a crash here is a bug or a term
      that cannot start, not weather.
    * **an alert destination stops alone** — the outbox dispatcher's delivery task per destination
      (``outbox:<name>``: its sender raised something other than ``DeliveryError``, a bug) ends; its
      ``on_failure`` (:meth:`core.ops.ComponentHealth.task_failed`) shows it as a component down, so
      ``/health`` and ``tradectl health`` report it, and its alerts wait in the outbox for the next
      process. Trading and chat go on: a crash loop over one alert would also take ``/kill`` away.
    * **one unit of work is not fatal** — a scheduled job's run (``scheduler:<job>:<slot>``) and the
      scheduler's catch-up pass are logged and recorded (the job run is marked ``failed`` and a
      ``job_failed`` alert sent); the next slot, or the next leader's catch-up, runs again. Their
      supervisor has no ``on_failure``.
    """

    def __init__(self, name: str, on_failure: Callable[[TaskFailed], None] | None = None) -> None:
        self.name = name
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._on_failure = on_failure
        self.failures: list[TaskFailed] = []

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        if name in self._tasks and not self._tasks[name].done():
            coro.close()
            raise RuntimeError(f"task {name!r} already running")
        task = asyncio.create_task(coro, name=name)
        self._tasks[name] = task
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(task.get_name()) is task:
            del self._tasks[task.get_name()]
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        failure = TaskFailed(task.get_name(), exc)
        self.failures.append(failure)
        log.error("task %s failed", task.get_name(), exc_info=exc)
        if self._on_failure is not None:
            self._on_failure(failure)

    def running(self) -> list[str]:
        return sorted(self._tasks)

    def task(self, name: str) -> asyncio.Task[Any] | None:
        """The running task called ``name``, if any (to await its result)."""
        return self._tasks.get(name)

    async def cancel(self, name: str) -> None:
        task = self._tasks.get(name)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def stop(self, timeout: float = 5.0) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                log.warning("task %s did not stop within %.1fs", task.get_name(), timeout)
        self._tasks.clear()


async def finish(tasks: Iterable[asyncio.Task[Any]], grace_s: float) -> set[asyncio.Task[Any]]:
    """Give ``tasks`` (already told to stop) ``grace_s`` to end on their own, then cancel the rest and
    wait for them. Returns the tasks that had to be cancelled. For work that must not be cut short
    mid-transaction unless it hangs."""
    tasks = set(tasks)
    if not tasks:
        return set()
    _, overdue = await asyncio.wait(tasks, timeout=grace_s)
    for task in overdue:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return overdue


async def stop_all(components: list[Component], timeout: float) -> None:
    """Stop components in reverse order, each within ``timeout``; errors are logged, not raised."""
    for comp in reversed(components):
        stopping = asyncio.ensure_future(comp.stop())
        try:
            done, _ = await asyncio.wait({stopping}, timeout=timeout)
            if not done:
                log.error("component %s did not stop within %.1fs; where its tasks are:\n%s", comp.name, timeout,
                          _task_stacks())
                stopping.cancel()
                await asyncio.wait({stopping}, timeout=timeout)
                continue
            stopping.result()
            log.info("stopped %s", comp.name)
        except Exception:
            log.exception("component %s failed to stop", comp.name)


def _task_stacks() -> str:
    """Every pending task's name and the chain of awaits it is suspended in: what a hung stop waits for."""
    lines = []
    for task in asyncio.all_tasks():
        chain: list[str] = []
        coro: Any = task.get_coro()
        while coro is not None and len(chain) < 12:
            frame = (getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
                     or getattr(coro, "ag_frame", None))
            if frame is not None:
                chain.append(f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno} {frame.f_code.co_name}")
            coro = (getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
                    or getattr(coro, "ag_await", None))
        lines.append(f"  {task.get_name()}: {' -> '.join(chain) or '(not started)'}")
    return "\n".join(sorted(lines))

class CallbackComponent:
    """A component made of two coroutines (handy for wiring small pieces)."""

    def __init__(self, name: str, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._start = start
        self._stop = stop

    async def start(self) -> None:
        await self._start()

    async def stop(self) -> None:
        await self._stop()
