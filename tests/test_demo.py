"""The demo project runs from a fresh checkout, with no broker server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.acceptance

ROOT = Path(__file__).resolve().parent.parent

#: The kallables of the tasks the demo creates, in order.
KALLABLES = [
    "shop.tasks.add_vat",
    "shop.tasks.add_vat",
    "shop.tasks.Invoice.render",
    "shop.tasks.Invoice.render",
    "shop.tasks.charge_card",
    "shop.tasks.build_report",
    "shop.tasks.build_report",
]


@pytest.fixture(scope="module")
def demo_output() -> str:
    """Run ``demo/manage.py rundemo`` on the in-memory transport once."""
    env = {
        **os.environ,
        "CARROT_BROKER_URL": "memory://",
        # pytest-django exports the suite's settings; the demo has its own.
        "DJANGO_SETTINGS_MODULE": "demosite.settings",
    }
    result = subprocess.run(
        [sys.executable, "demo/manage.py", "rundemo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_demo_says_which_broker_it_uses_and_why(demo_output):
    assert "memory://" in demo_output
    assert "named by CARROT_BROKER_URL in the environment" in demo_output


def test_the_demo_lists_every_task_it_created(demo_output):
    rows = [line for line in demo_output.splitlines() if line.startswith("shop.")]

    assert [row.split()[0] for row in rows] == KALLABLES


def test_the_demo_shows_the_failed_task_with_its_error(demo_output):
    (row,) = [line for line in demo_output.splitlines() if " failed " in line]

    assert row.startswith("shop.tasks.charge_card")
    assert "ValueError: card declined for order 1003" in row
    assert "6 succeeded, 1 failed" in demo_output


def test_the_demo_shows_a_bad_kallable_refused_when_created(demo_output):
    assert "Refused:  kallable 'shop.tasks.refund' does not exist" in demo_output
