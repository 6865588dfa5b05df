"""Molecules in: reading, validating, splitting, spelling, batching and describing them."""
