"""The console script gives Prefect's temporary server time to start on a slow machine.

Prefect reads its settings once, when it is imported; `make demo` on a fresh, busy machine once
failed because the first start of the temporary server (which creates its database) outlasted
Prefect's 20 s default. The check runs the real entry point in a fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import sys
from dunning.cli import main
sys.argv = ["dunning", "--help"]
try:
    main()
except SystemExit:
    pass
from prefect.settings import get_current_settings
print("TIMEOUT", get_current_settings().server.ephemeral.startup_timeout_seconds)
"""


def _timeout(env: dict[str, str]) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("TIMEOUT"))
    return int(line.split()[1])


def test_the_cli_gives_the_temporary_server_two_minutes_unless_told_otherwise() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
    }
    assert _timeout(env) == 120
    assert _timeout({**env, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "45"}) == 45
