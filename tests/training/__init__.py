"""Fixtures and helpers of the training tests."""
