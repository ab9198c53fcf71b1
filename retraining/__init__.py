"""The framework-free core of the retraining app: models, settings, errors, service clients.

Nothing here imports `azure.functions` or `azure.durable_functions`, so it can be tested and
type-checked on its own.
"""
