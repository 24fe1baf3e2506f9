"""Logs and traces shared by every process of the project (server, UI, training, evals)."""
