"""The final state of a reminder run, and its report kept for the caller when the Prefect API's
answer to that state is lost.

A reminder flow returns a Completed state holding its report, so the runs list shows the
counts. When the client's request that sets that state reaches the server but its answer does
not come back (a read timeout while the server waits on its database, a dropped connection),
the Prefect client sends the same request again; the server has already made the transition
and refuses the repeat (``PreventDuplicateTransitions``: "This run has already made this state
transition"), answering with the stored state. A stored state carries no data when result
persistence is off (our default: a report holds personal data), so the flow engine, which reads
a returned state's value from the state it was last given, raised ``MissingResult`` for a run
that had completed and sent its reminders. Seen with Prefect 3.9.1 on a loaded SQLite Prefect
server; 3.8.8's engine and server take the same path.

``completed`` keeps the report by flow run id until the state is set; the flow's
``on_completion`` hook ``hand_report_back`` puts it on the state the engine keeps when that
state came back without data, so calling the flow (directly, as a subflow, from the CLI or a
notebook) returns the report either way.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from prefect.runtime import flow_run as current_flow_run
from prefect.states import Completed, State

from dunning.report import RunReport

#: Reports kept at most (oldest dropped first): one per reminder flow run of this process whose
#: final state is being set, so a handful; a report left by a run whose state-setting raised
#: must not stay for the life of a long-running worker.
MAX_KEPT = 16

_kept: OrderedDict[str, RunReport] = OrderedDict()
_lock = threading.Lock()


def completed(report: RunReport | State[Any]) -> State[Any]:
    """A Completed state holding ``report`` whose message gives its counts, so the runs list
    and the run page show them (calling the flow still returns the report itself); a state
    the run already ended in (Cancelled: approval rejected) is kept as it is.

    Called as the flow's return value inside a flow run: the report is also kept by the flow
    run's id until ``hand_report_back`` has seen the final state (at most ``MAX_KEPT``)."""
    if isinstance(report, State):
        return report
    run_id = current_flow_run.id
    if run_id:
        with _lock:
            _kept[str(run_id)] = report
            _kept.move_to_end(str(run_id))
            while len(_kept) > MAX_KEPT:
                _kept.popitem(last=False)
    return Completed(message=report.summary_line(), data=report)


def hand_report_back(flow: Any, flow_run: Any, state: State[Any]) -> None:
    """Prefect ``on_completion`` hook of the reminder flows (signature ``(flow, flow_run,
    state)``): forgets the report ``completed`` kept for ``flow_run``, and puts it on ``state``
    when the API gave the state back without its data (the repeated request refused as a
    duplicate transition, see the module docstring). ``state`` is the object the flow engine
    keeps as the run's state and reads the return value from; ``state.data`` set to the report
    itself is what Prefect's ``State.result()`` returns as is."""
    with _lock:
        report = _kept.pop(str(flow_run.id), None)
    if report is not None and state.data is None:
        state.data = report
