"""`automation demo`: the whole product on the embedded default, in simulated time.

A fresh SQLite file and outbox in one folder, Dramatiq's in-process StubBroker
with one long-lived worker, the outbox providers (never a real provider, even
when SendGrid or Twilio keys are set), a generated customer base
(`demo.data`), then a tick every simulated hour: each hour's records are
ingested, manual journeys are launched as campaigns, the tick runs at that
instant and the worker delivers what it enqueued before the clock moves on;
then some recipients open the emails that journeys branch on (`demo.opens`).
As the scheduler does, `insight refresh` runs once a day at AUTOMATION_INSIGHT_AT
(and once on the history, before the first tick).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dramatiq

from automation import providers
from automation.campaigns import campaign as campaigns
from automation.config import Settings, load_settings
from automation.core.filters import Filter
from automation.definitions.catalog import Catalog
from automation.deliver.deliverer import Deliverer
from automation.demo import opens
from automation.demo.data import HOUR, Dataset, generate
from automation.errors import UserError
from automation.ingest.load import ingest
from automation.insight import experiments, reporting
from automation.insight.experiments import ExperimentResult
from automation.insight.refresh import refresh
from automation.loyalty import coupons
from automation.processes.runtime import QUEUES, Runtime, build_runtime, make_broker, run_tick
from automation.store import db

DEFAULT_START = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
#: The journey whose experiment the demo reports.
EXPERIMENT = "inactive_60d"
#: The codes the demo generates for each coupon pool its journeys name.
DEMO_PATTERN = "DEMO-####-????"

#: The example segment for manual journeys: customers who have ordered.
CAMPAIGN_FILTER = Filter.model_validate({"fact": "order_count", "gte": 1})


@dataclass(frozen=True)
class DayReport:
    day: int
    date: dt.date
    records: int
    enrolled: int
    deliveries: int


@dataclass(frozen=True)
class DemoResult:
    directory: Path
    database: Path
    outbox: Path
    customers: int
    records: int
    ticks: int
    since: dt.datetime
    until: dt.datetime
    campaigns: list[str]
    stats: list[reporting.JourneyStats]
    emails: int
    sms: int
    #: `automation experiments show EXPERIMENT` on the demo's database (none without the journey).
    experiments: list[ExperimentResult] = field(default_factory=list)


def resolve_dir(configured: Path, name: str) -> Path:
    """The configured folder when it exists, else the one shipped beside the package."""
    if configured.is_dir():
        return configured
    shipped = PACKAGE_ROOT / name
    if shipped.is_dir():
        return shipped
    raise UserError(f"{configured}: no {name} folder here, and none shipped with the package")


def demo_settings(directory: Path) -> Settings:
    """The embedded default inside `directory`, whatever the environment says about services."""
    configured = load_settings()
    return load_settings(
        database_url=f"sqlite:///{directory / 'demo.db'}",
        redis_url=None,
        email_provider="outbox",
        sms_provider="outbox",
        outbox_dir=directory / "outbox",
        journeys_dir=resolve_dir(configured.journeys_dir, "journeys"),
        templates_dir=resolve_dir(configured.templates_dir, "templates"),
    )


MARKER = ".automation-demo"


def _fresh(directory: Path) -> None:
    """Remove what an earlier demo left in the folder; refuse a folder the demo did not make."""
    if directory.is_dir() and any(directory.iterdir()) and not (directory / MARKER).is_file():
        raise UserError(f"{directory} holds other files; give the demo a new or empty folder (--dir)")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("made by `automation demo`; its files are replaced on each run\n")
    for suffix in ("", "-wal", "-shm"):
        (directory / f"demo.db{suffix}").unlink(missing_ok=True)
    shutil.rmtree(directory / "outbox", ignore_errors=True)


class _Clock:
    """Simulated time: the deliverer stamps `sent_at` with it."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at


def _ingest(runtime: Runtime, records: list[dict[str, object]], source: str, now: dt.datetime) -> None:
    lines = [json.dumps(r) for r in records]
    settings, programme = runtime.settings, runtime.catalog.programme
    result = ingest(lines, source, runtime.sessions, now, settings.order_event, programme=programme)
    if result.rejected:
        raise UserError(f"demo data refused: {result.rejected[0]}")


def _expire_after(catalog: Catalog) -> dt.timedelta | None:
    """How long the programme's points last, when they expire a fixed time after earning."""
    points = catalog.programme.points if catalog.programme else None
    return points.expire.after if points and points.expire else None


def _tier_min(catalog: Catalog) -> float:
    """The measure that reaches the programme's first tier above the lowest (200 without tiers)."""
    tiers = catalog.programme.tiers if catalog.programme else None
    return float(tiers.levels[1].min) if tiers and len(tiers.levels) > 1 else 200.0


def _fill_pools(runtime: Runtime, catalog: Catalog, customers: int, at: dt.datetime) -> None:
    """One code per customer in every pool a journey's send step names, so its emails show real codes."""
    pools = {step.coupon for j in catalog.active() for _, step in j.send_steps() if step.coupon}
    with runtime.sessions.begin() as s:
        for pool in sorted(pools):
            coupons.generate(s, pool, DEMO_PATTERN, customers, at)


def run_demo(
    directory: Path,
    *,
    customers: int = 300,
    days: int = 14,
    seed: int = 7,
    start: dt.datetime = DEFAULT_START,
    on_day: Callable[[DayReport], None] | None = None,
) -> DemoResult:
    """Generate customers, simulate `days` of hourly ticks, and report per journey."""
    directory = directory.resolve()
    settings = demo_settings(directory)
    _fresh(directory)
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)
    engine.dispose()
    runtime = build_runtime(settings)
    catalog = runtime.catalog
    _fill_pools(runtime, catalog, customers, start)
    data = generate(
        catalog.active(),
        catalog.tier_order,
        customers=customers,
        start=start,
        days=days,
        seed=seed,
        order_event=settings.order_event,
        expire_after=_expire_after(catalog),
        tier_min=_tier_min(catalog),
    )
    clock = _Clock(start)
    from automation.processes import worker as worker_module

    broker = make_broker(settings)
    worker_module.bind(broker)
    worker_module.install(
        Deliverer(
            runtime.sessions,
            runtime.catalogs,
            settings,
            providers.email_provider(settings),
            providers.sms_provider(settings),
            clock=clock.now,
        )
    )
    # One thread: which of a customer's same-hour messages the cap defers must not depend on
    # thread timing, so that the same seed always tells the same story.
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    launched: list[str] = []
    try:
        _ingest(runtime, data.history, "demo history", start)
        launched = _simulate(runtime, broker, worker, data, clock, on_day)
    finally:
        worker.stop()
        worker_module.install(None)
    until = start + days * 24 * HOUR + HOUR
    # Every delivery, as `automation status` counts them on the same database.
    stats = reporting.status(runtime.sessions, catalog)
    journey = catalog.journeys.get(EXPERIMENT)
    found = (
        experiments.results(runtime.sessions, catalog, journey, settings.global_holdout_pct)
        if journey is not None
        else []
    )
    runtime.engine.dispose()
    outbox = settings.outbox_dir
    return DemoResult(
        directory=directory,
        database=directory / "demo.db",
        outbox=outbox,
        customers=data.customers,
        records=data.records(),
        ticks=data.hours + 1,
        since=start,
        until=until,
        campaigns=launched,
        stats=stats,
        emails=len(list((outbox / "email").glob("*.eml"))),
        sms=len(list((outbox / "sms").glob("*.txt"))),
        experiments=found,
    )


def _simulate(
    runtime: Runtime,
    broker: dramatiq.Broker,
    worker: dramatiq.Worker,
    data: Dataset,
    clock: _Clock,
    on_day: Callable[[DayReport], None] | None,
) -> list[str]:
    launched: list[str] = []
    records = enrolled = deliveries = 0
    for hour in range(data.hours + 1):
        now = data.start + hour * HOUR
        clock.at = now
        batch = data.timeline.get(hour, [])
        if batch:
            _ingest(runtime, batch, f"demo hour {hour}", now)
            records += len(batch)
        if hour == 0 or now.time() == runtime.settings.insight_at:
            refresh(runtime.sessions, runtime.settings.order_event, now)
        for journey_id in data.launches.get(hour, []):
            result = campaigns.launch(
                runtime.sessions,
                runtime.catalog,
                journey_id,
                now=now,
                launched_by="demo",
                where=CAMPAIGN_FILTER,
                campaign_id=f"{journey_id}-demo",
            )
            enrolled += result.enrolled
            launched.append(result.campaign_id)
        report = run_tick(runtime, broker, now)
        enrolled += sum(report.enrolled.values())
        deliveries += report.deliveries
        if report.enqueued:
            for queue in QUEUES:
                broker.join(queue, fail_fast=False)  # type: ignore[call-arg]
            worker.join()
            opens.open_sent(runtime.sessions, runtime.catalog, now)
        if on_day and hour and hour % 24 == 0:
            on_day(DayReport(hour // 24, (now - HOUR).date(), records, enrolled, deliveries))
            records = enrolled = deliveries = 0
    return launched
