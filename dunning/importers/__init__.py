"""Imports of customers, invoices, payments and payment attempts from CSV or .xlsx files.

``validate`` is the pure core (rows -> plan and errors), ``writer`` the database shell.
"""

from dunning.importers.validate import KINDS, Context, InvoiceRef, Plan, RowError, plan_import
from dunning.importers.writer import ImportReport, InvalidRows, import_file

__all__ = [
    "KINDS",
    "Context",
    "ImportReport",
    "InvalidRows",
    "InvoiceRef",
    "Plan",
    "RowError",
    "import_file",
    "plan_import",
]
