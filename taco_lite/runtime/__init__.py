"""Runtime: device choice, autocast, and checkpoints (atomic write, verified load)."""
