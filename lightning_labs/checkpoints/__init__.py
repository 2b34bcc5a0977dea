"""Checkpoints: safe loading, atomic writing, the RNG state they carry, resuming from one and
rebuilding a trained model and its data."""
