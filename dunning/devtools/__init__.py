"""Test and demo tooling: provider fakes, the portfolio seeder, fault injection and scratch
databases.

Nothing in the product imports this package (an import-linter contract in ``make lint`` checks
it). The CLI's ``dunning seed`` and ``dunning fakes`` commands live here too and are registered
by name when the package is present; the one runtime seam is :mod:`dunning.faultpoint`.
"""
