"""Starter functions: a weekly timer, training data arriving in Blob storage, and a manual HTTP call."""
