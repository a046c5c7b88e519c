"""The pure core: the concepts every layer shares, each declared once.

Nothing here imports Prefect, a database session or a provider SDK; numpy and pandas are
allowed (the planner's vectorised rules live on them).

- ``dunning.core.status``: ReminderStatus, the ledger's states, and the sets derived from it.
- ``dunning.core.skip``: SkipReason and the one ordered rule set behind every skip decision.
- ``dunning.core.messages``: ReminderData, OutboundMessage, SendResult, StaleClaim.
- ``dunning.core.portfolio``: the Portfolio frame and its column schema (the SQL loader is
  ``dunning.portfolio``).

Stage names, the repeat and retry suffixes, the minimum balance and tones are the loaded
policy's (``dunning.policy.model``): nothing else lists them.
"""
