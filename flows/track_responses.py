"""The deployment entrypoint `flows/track_responses.py:track_responses` that prefect.yaml names.

The flow itself is :mod:`dunning.flows.track_responses`; an installed wheel reaches it as
`dunning.flows.track_responses:track_responses`.
"""

from dunning.flows.track_responses import track_responses

__all__ = ["track_responses"]
