"""Charts and the schedule: /chart, /schedule, /report."""

from __future__ import annotations

from dataclasses import dataclass

from bot.context import CommandContext
from bot.errors import CommandError
from bot.identity import Role
from bot.notify.formats import Alert, Style, from_event
from bot.registry import arg, command
from bot.reply import Block, Image, KeyValues, Reply, Table, Text, choice_buttons
from core.trading import ReportService


def _reports(ctx: CommandContext) -> ReportService:
    services = ctx.services
    if not hasattr(services, "chart"):
        raise CommandError("Charts and schedules are not available here.")
    # the hasattr checks above do not narrow the type to ReportService
    return services  # type: ignore[return-value]


@dataclass(frozen=True)
class ChartArgs:
    days: int = arg(30, help="how many days back (1-3650)", min=1, max=3650)


CHART_SPANS = ((7, "Week"), (30, "Month"), (90, "Quarter"), (365, "Year"))


@command("chart", group="Reports", args=ChartArgs, help="Equity curve as an image",
         usage="/chart 7 draws the last week. The chart (of the whole account, not one pair) carries buttons "
               "for the other usual spans.")
async def chart(ctx: CommandContext, args: ChartArgs) -> Reply:
    png = await _reports(ctx).chart(args.days)
    spans = [(label, f"chart {days}") for days, label in CHART_SPANS if days != args.days]
    return Reply((Image(png, f"Equity, last {args.days} day(s)"), *choice_buttons(spans)))


@command("schedule", group="Reports", help="Scheduled jobs with their next run, and the latest runs")
async def schedule(ctx: CommandContext, args: None) -> Reply:
    jobs, runs = await _reports(ctx).schedule()
    if not jobs and not runs:
        return Reply((Text("No scheduled jobs (schedule.enabled is off)."),))
    blocks: list[Block] = [Table("Scheduled jobs", ("job", "schedule", "next run"),
                                 tuple((j.name, j.schedule,
                                        ctx.clock_time(j.next_run) if j.next_run else "-") for j in jobs),
                                 optional=("schedule",))]
    if runs:
        blocks.append(Table("Latest runs", ("job", "for", "status"),
                            tuple((r.name, ctx.clock_time(r.scheduled_for), r.status) for r in runs)))
    return Reply(tuple(blocks))


@dataclass(frozen=True)
class ReportArgs:
    job: str | None = arg(None, help="the job to run now, e.g. daily_report (without it: the jobs to choose from)")


def alert_blocks(alert: Alert, image: bytes = b"") -> list[Block]:
    """A formatted alert (a report) as reply blocks: its title and lines, its figures, its chart."""
    blocks: list[Block] = [Text("\n".join((alert.title, *alert.lines)))]
    if alert.fields:
        blocks.append(KeyValues(alert.title.split(":", 1)[0], alert.fields))
    if image:
        blocks.append(Image(image, alert.title))
    return blocks


@command("report", group="Reports", role=Role.ADMIN, args=ReportArgs,
         help="Run a scheduled job now and show what it produced (e.g. a PnL report)",
         confirm_when=lambda args: args.job is not None,  # listing the jobs asks nothing (chat.confirm_commands)
         usage="/report daily_report sends you the daily report now (and to the alert channels); "
               "/report alone lists the jobs, a button for each.")
async def report(ctx: CommandContext, args: ReportArgs) -> Reply:
    if args.job is None:
        return await _job_choices(ctx)
    outcome = await _reports(ctx).run_job(args.job)
    style = Style(timezone=ctx.timezone)
    blocks: list[Block] = []
    for event in outcome.events:
        blocks += alert_blocks(from_event(event, style, now=ctx.clock.now()), getattr(event, "image_png", b"") or b"")
    if outcome.status == "finished":
        return Reply(tuple(blocks) if blocks else (Text(f"{args.job}: finished.", "success"),))
    what = {"skipped": "is already running (or ran for this moment on another instance)",
            "failed": "failed (details in the log)",
            "dropped": "ran, but this instance lost the lead before recording it",
            "cancelled": "was cancelled: leadership changed"}.get(outcome.status, outcome.status)
    return Reply((Text(f"{args.job} {what}.", "warning"), *blocks))


async def _job_choices(ctx: CommandContext) -> Reply:
    """/report without a job: the jobs, listed and (the first few) as buttons that run /report <job>."""
    jobs, _ = await _reports(ctx).schedule()
    if not jobs:
        return Reply((Text("No scheduled jobs to run (schedule.enabled is off)."),))
    table = Table("Jobs you can run now", ("job", "schedule"), tuple((j.name, j.schedule) for j in jobs),
                  optional=("schedule",))
    return Reply((table,
                  Text(f"Send /report {jobs[0].name} (or another job above) to run one now, or press its button."),
                  *choice_buttons([(j.name, f"report {j.name}") for j in jobs])))
