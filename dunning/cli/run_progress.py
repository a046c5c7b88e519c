"""The progress bar of ``dunning run`` on a terminal: messages handled of those planned, the
rate and the time left, following the delivery batches as the flow reports them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from dunning.progress import DeliveryProgress, listen


class RateColumn(ProgressColumn):
    """Messages per second, over the run so far."""

    def render(self, task: Task) -> Text:
        """The task's speed as ``12.3 msg/s`` (``-`` until rich has a speed)."""
        speed = task.finished_speed or task.speed
        return Text("-" if speed is None else f"{speed:.1f} msg/s", style="cyan")


def describe(p: DeliveryProgress) -> str:
    """The text beside the bar: batches done and the counts so far."""
    return (
        f"batch {p.batches_done}/{p.batches}  sent {p.sent}  failed {p.failed}  skipped {p.skipped}"
    )


@contextmanager
def delivery_bar(console: Console) -> Iterator[None]:
    """A live bar on ``console`` while inside, fed by the flow's delivery progress reports
    (``dunning.progress``); a spinner until the first report says how much is planned."""
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]messages"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("planning…", total=None)

        def update(p: DeliveryProgress) -> None:
            bar.update(task, total=p.planned, completed=p.done, description=describe(p))

        with listen(update):
            yield
