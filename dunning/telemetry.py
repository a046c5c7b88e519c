"""No telemetry from the Prefect servers and clients dunning starts.

The CLI and the notebook start ephemeral Prefect servers; on a machine without internet their
usage reporting fails loudly (red errors in the run output). Prefect's own switches turn it off:
PREFECT_SERVER_ANALYTICS_ENABLED (the server's telemetry service) and DO_NOT_TRACK (the
client-side analytics of Prefect 3.9+). A value the user set wins.
"""

from __future__ import annotations

import os

#: Prefect's opt-out settings and the values dunning gives them unless the user set them.
QUIET = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


def quiet_prefect_telemetry() -> None:
    """Nothing; sets each of ``QUIET`` in the environment unless already set. Call it before
    Prefect reads its settings (``import dunning`` does)."""
    for name, value in QUIET.items():
        os.environ.setdefault(name, value)
