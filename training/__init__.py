"""chatforge training."""
