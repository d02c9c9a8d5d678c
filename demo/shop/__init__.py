"""A small shop: its tasks render invoices, charge cards and build reports."""
