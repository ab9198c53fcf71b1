"""Activity functions: each is a thin shim over `retraining.operations`, one blueprint per concern."""
