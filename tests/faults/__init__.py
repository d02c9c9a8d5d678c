"""Tests that kill services and restart brokers, and show nothing is lost."""
