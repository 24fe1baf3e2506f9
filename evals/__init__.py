"""chatforge evals."""
