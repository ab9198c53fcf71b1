"""devhost: run function_app.py locally on durabletask, with Azurite and the Studio emulator; dev-only."""

import os

# gRPC's C core prints connection chatter unless told otherwise, and reads this only at import.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
