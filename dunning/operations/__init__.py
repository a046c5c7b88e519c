"""Operator actions: pause, dispute, promise, paid, resolve, retry, acknowledge.

One module serves the CLI (``dunning invoice|customer|reminder|inbox|replies ...``) and the
``operator-action`` flow; every action is written to the ``operator_actions`` audit table.
``holds`` holds the rules sources follow so they never undo an operator's pause or dispute.
"""
