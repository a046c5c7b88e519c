"""The reminder policy: the policy file, the ladder, the send window, the planner, the forecast."""

from dunning.policy.forecast import forecast
from dunning.policy.loader import DEFAULT_POLICY_PATH, load_policy, parse_policy
from dunning.policy.model import Ladder, Policy, SendWindow, Stage
from dunning.policy.planner import PLAN_COLUMNS, plan, segment_frame

__all__ = [
    "DEFAULT_POLICY_PATH",
    "PLAN_COLUMNS",
    "Ladder",
    "Policy",
    "SendWindow",
    "Stage",
    "forecast",
    "load_policy",
    "parse_policy",
    "plan",
    "segment_frame",
]
