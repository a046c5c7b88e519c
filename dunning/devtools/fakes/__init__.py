"""Local fake providers speaking Twilio's and SendGrid's real wire protocols.

``run_fakes(...)`` serves both on one free 127.0.0.1 port for tests and demos;
``dunning fakes serve`` runs them in the foreground.
"""

from dunning.devtools.fakes.config import FakeConfig
from dunning.devtools.fakes.context import FakeContext
from dunning.devtools.fakes.server import RunningFakes, bind, create_app, env_for, run_fakes, serve
from dunning.devtools.fakes.state import FakeState, Received

__all__ = [
    "FakeConfig",
    "FakeContext",
    "FakeState",
    "Received",
    "RunningFakes",
    "bind",
    "create_app",
    "env_for",
    "run_fakes",
    "serve",
]
