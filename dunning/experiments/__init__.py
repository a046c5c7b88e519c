"""A/B tests of wording, timing and channel, judged by money collected (issue 20).

- :mod:`dunning.policy.experiments`: the experiments of the policy file (pure data).
- :mod:`dunning.experiments.assign`: deterministic arm assignment and its effect on plan lines
  (pure pandas: no Prefect, no database, no provider SDK).
- :mod:`dunning.experiments.analysis`: the statistics (statsmodels / scipy) over a frame of
  matured reminders.
- :mod:`dunning.experiments.store`: the database side (ledger rows of an experiment,
  promotions, holdout rows).
"""

from dunning.policy.experiments import Arm, Experiment

__all__ = ["Arm", "Experiment"]
