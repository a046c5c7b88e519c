"""The reminders-dry-run flow: what a reminder run would send, with no way to send.

A flow of its own rather than payment-reminders with ``dry_run: true``: it has no ``dry_run``
parameter (and none for batching or sharding), so no parameters a run is given — from the
UI, ``prefect deployment run --param/--params`` or the API — can turn sending on. Unknown
parameters such as ``dry_run`` or a nested ``params`` fail the run before it starts.
"""

from __future__ import annotations

from prefect import flow
from prefect.states import State

from dunning.flows.final_state import completed, hand_report_back
from dunning.flows.payment_reminders import run_name, run_reminders
from dunning.params import (
    AsOf,
    Channels,
    InvoiceNumbers,
    MaxMessages,
    PolicyPath,
    RunParameters,
    Segments,
    Stages,
    document_parameters,
)
from dunning.report import RunReport
from dunning.timeouts import flow_timeout


@flow(
    name="reminders-dry-run",
    timeout_seconds=flow_timeout("reminders_dry_run"),
    flow_run_name=run_name("dry run"),
    description="Preview a reminder run: plan and report what would be sent; never sends.",
    log_prints=False,
    on_completion=[hand_report_back],  # the report reaches the caller (final_state)
)
@document_parameters
def reminders_dry_run(
    as_of: AsOf = None,
    channels: Channels = (),
    segments: Segments = (),
    stages: Stages = (),
    invoice_numbers: InvoiceNumbers = (),
    max_messages: MaxMessages = None,
    policy_path: PolicyPath = None,
) -> State[RunReport]:
    """The report of what a reminder run as of ``as_of`` would send, skip and defer (in a
    Completed state whose message gives the counts); writes nothing to the ledger and contacts
    no provider."""
    return completed(
        run_reminders(
            RunParameters(
                as_of=as_of,
                dry_run=True,  # hard-wired: this flow has no parameter that could change it
                channels=channels,
                segments=segments,
                stages=stages,
                invoice_numbers=invoice_numbers,
                max_messages=max_messages,
                policy_path=policy_path,
            )
        )
    )
