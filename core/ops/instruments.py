"""The series other packages push into as things happen: commands, confirmations, venue requests, jobs.

:class:`Instruments` is built by the composition root (``core.app.wiring``) only when ``metrics.enabled``,
handed to the parts it observes, and its registry served by :class:`~core.ops.metrics.MetricsServer`. It
implements the small observer protocols those parts declare themselves — ``bot.dispatcher.DispatchObserver``,
``exchanges._http.RequestObserver``, :class:`core.ops.scheduler.SchedulerObserver` — so ``bot/`` and
``exchanges/`` never import it, and a service without metrics passes None and pays nothing.

Labels stay bounded: a command label is a registered command name (the dispatcher maps anything else to
``unknown``), a decision one of the audit's decisions, a venue host a configured URL's host, an error a class
name from the :mod:`exchanges.errors` hierarchy, a job a configured job name. Nothing here changes what it
observes, and nothing here may raise into it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# present from the first scrape, so rate() sees the first one
CONFIRMATION_OUTCOMES = ("requested", "confirmed", "cancelled", "expired", "refused")
# Dispatch is a database round trip or two, a command's reply a few more: 5 ms .. 10 s.
DISPATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A venue's REST answer: 25 ms .. 30 s (the client's timeout is 10 s by default).
REQUEST_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0)


class Instruments:
    """The push-style series of one service, in ``registry`` (the metrics server's)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.command_attempts = Counter(
            "tradectl_command_attempts", "Chat command attempts by command and the middleware's decision "
            "(unknown names count as command=\"unknown\")", ["command", "decision"], registry=r)
        self.dispatch_seconds = Histogram(
            "tradectl_command_dispatch_seconds", "Time from a chat input reaching the dispatcher to its reply being "
            "ready (checks, audit, the command itself)", ["command"], buckets=DISPATCH_BUCKETS, registry=r)
        self.confirmations = Counter(
            "tradectl_confirmations",
            "Confirmation prompts by outcome (requested, confirmed, cancelled, expired, refused)",
            ["outcome"], registry=r)
        self.venue_requests = Counter(
            "tradectl_venue_requests", "REST requests to a live venue by host and outcome (ok, or the error class)",
            ["host", "outcome"], registry=r)
        self.venue_request_seconds = Histogram(
            "tradectl_venue_request_seconds", "Latency of REST requests to a live venue (one HTTP exchange, retries "
            "apart)", ["host"], buckets=REQUEST_BUCKETS, registry=r)
        self.venue_retries = Counter(
            "tradectl_venue_retries", "Venue calls tried again, by the error that caused it", ["error"], registry=r)
        self.rate_limit_wait = Counter(
            "tradectl_rate_limit_wait_seconds", "Seconds spent waiting before a retry because a venue said to slow "
            "down (429 / Retry-After, or a rate-limit error)", registry=r)
        self.chat_send_wait = Counter(
            "tradectl_chat_send_wait_seconds", "Seconds chat replies (Telegram) and alerts (every platform) waited "
            "before being sent, by platform and reason (pace: our own per-chat, overall or per-destination limits; "
            "retry_after: the platform answered 429)", ["platform", "reason"], registry=r)
        self.job_runs = Counter(
            "tradectl_scheduler_job_runs", "Scheduled job runs by job and outcome (finished, failed, skipped: "
            "another replica had it, cancelled, dropped: leadership lost before it was recorded)",
            ["job", "outcome"], registry=r)
        self.job_seconds = Histogram(
            "tradectl_scheduler_job_seconds", "Duration of scheduled job runs this replica executed", ["job"],
            buckets=JOB_BUCKETS, registry=r)
        self.job_misses = Counter(
            "tradectl_scheduler_job_misses", "Scheduled runs that came due outside their grace period and were "
            "not run", ["job"], registry=r)
        for outcome in CONFIRMATION_OUTCOMES:
            self.confirmations.labels(outcome)

    # -- bot.dispatcher.DispatchObserver ---------------------------------------------------------

    def command_attempt(self, command: str, decision: str) -> None:
        self.command_attempts.labels(command, decision).inc()

    def command_dispatched(self, command: str, seconds: float) -> None:
        self.dispatch_seconds.labels(command).observe(max(0.0, seconds))

    def confirmation(self, outcome: str) -> None:
        self.confirmations.labels(outcome).inc()

    # -- exchanges._http.RequestObserver ---------------------------------------------------------

    def venue_request(self, host: str, seconds: float, outcome: str) -> None:
        self.venue_requests.labels(host, outcome).inc()
        self.venue_request_seconds.labels(host).observe(max(0.0, seconds))

    def venue_retry(self, error: str, wait_s: float, rate_limited: bool) -> None:
        self.venue_retries.labels(error).inc()
        if rate_limited:
            self.rate_limit_wait.inc(max(0.0, wait_s))

    # -- bot.notify.ratelimit.PacingObserver ----------------------------------------------------

    def chat_send_waited(self, platform: str, reason: str, seconds: float) -> None:
        self.chat_send_wait.labels(platform, reason).inc(max(0.0, seconds))

    # -- core.ops.scheduler.SchedulerObserver ----------------------------------------------------

    def job_run(self, job: str, outcome: str, seconds: float | None) -> None:
        self.job_runs.labels(job, outcome).inc()
        if seconds is not None:
            self.job_seconds.labels(job).observe(max(0.0, seconds))

    def job_missed(self, job: str) -> None:
        self.job_misses.labels(job).inc()
