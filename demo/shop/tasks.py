"""The kallables the demo's tasks name, by dotted path.

Each takes and returns plain JSON values, as every kallable must.
"""

from __future__ import annotations

import time


def add_vat(amount_cents: int, rate_percent: int = 20) -> int:
    """Return the amount with VAT added, in cents."""
    return amount_cents + amount_cents * rate_percent // 100


class Invoice:
    """Invoices; a task names the method as ``shop.tasks.Invoice.render``."""

    @staticmethod
    def render(order_id: int, currency: str = "EUR") -> str:
        """Return the file name of the rendered invoice."""
        return f"invoice-{order_id}-{currency}.pdf"


def charge_card(order_id: int) -> None:
    """Fail the way a payment provider refusing a card would."""
    raise ValueError(f"card declined for order {order_id}")


def build_report(month: str, seconds: float = 0.5) -> dict[str, object]:
    """Take a while, like a report over many rows would."""
    time.sleep(seconds)
    return {"month": month, "orders": 42}
