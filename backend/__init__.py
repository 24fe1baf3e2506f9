"""chatforge backend."""
