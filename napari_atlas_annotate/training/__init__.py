"""Training helper models from the project's submitted labels, one round at a time."""
