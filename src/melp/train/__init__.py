"""melp.train."""
