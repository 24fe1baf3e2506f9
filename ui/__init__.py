"""chatforge ui."""
