"""Generic training loop and checkpoints, shared by every method."""
