"""Local stand-ins for the machine-learning services the app drives; dev-only, never deployed.

`python -m emulator` serves them all from one FastAPI app (`app.py`) on a plain-HTTP port and a TLS
port, and prints one ready line. Each service lives in its own package or module, and each
package's docstring lists the behaviours it had to infer:

- `studio/`: Azure ML Studio (classic) web services: BES, RRS, classic management, ARM webServices.
- `azure_ml/`: Azure Machine Learning (v2) over ARM: jobs that really train, the model registry,
  online and batch endpoints with deployments and traffic, MLflow metrics, Event Grid events.
- `aad.py`: the Azure AD client-credentials token endpoint both services' ARM surfaces trust.
- `blobs.py`, `ilearner.py`: blob access and the trainer / pickle-free model format they share.
- `faults.py`: the `/_emulator/faults` admin endpoint and the fault kinds each service registers.
- `wire.py`, `typed.py`: request bodies and bearer tokens; dataclasses from JSON (config, faults).
- `admin.py`: `GET /_emulator/services` (URLs, keys, principals) and `GET /_emulator/state`.
"""
