"""melp.models."""
