"""melp.losses."""
