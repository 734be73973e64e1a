"""melp.train: distributed helpers, optimiser and schedule, training loop, checkpoints."""
