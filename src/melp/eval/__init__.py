"""melp.eval."""
