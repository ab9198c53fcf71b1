"""`python -m emulator [--host H] [--port P] [--tls-port P2] [--config FILE] [--fresh-secrets] [--state-dir DIR]
[--storage-connection-string CONN ...]`.

Serves the emulated services (Studio classic, Azure ML, Azure AD) on a plain-HTTP port and a TLS
port until interrupted, and prints one JSON line with both base URLs and the CA file once it is
ready. `--storage-connection-string` (repeatable) names the storage accounts Azure ML workspaces
may use as their identity; their datastores are containers there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import sys
from dataclasses import replace
from pathlib import Path

import uvicorn

from .app import create_app
from .azure_ml.storage import Storage
from .config import ConfigError, EmulatorConfig, default_config, with_fresh_secrets
from .security import ensure_tls

SHUTDOWN_GRACE_S = 1


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def serve(host: str, port: int, tls_port: int, config: EmulatorConfig, state_dir: Path) -> None:
    tls = ensure_tls(state_dir)
    http_base, https_base = f"http://{host}:{port}", f"https://{host}:{tls_port}"
    app = create_app(config, http_base=http_base, https_base=https_base, ca_file=str(tls.ca_cert.resolve()))
    # An idle TLS keep-alive connection holds a graceful shutdown until its close_notify times out;
    # give connections a second, not the half minute asyncio would wait.
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_level="warning",
                lifespan="off",
                timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
            )
        ),
        uvicorn.Server(
            uvicorn.Config(
                app,
                host=host,
                port=tls_port,
                log_level="warning",
                lifespan="off",
                timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
                ssl_certfile=str(tls.server_cert),
                ssl_keyfile=str(tls.server_key),
            )
        ),
    ]
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    while not all(s.started for s in servers):
        if any(t.done() for t in tasks):
            raise SystemExit("emulator: could not start (port in use?)")
        await asyncio.sleep(0.05)
    print(
        json.dumps({"emulator": "ready", "http": http_base, "https": https_base, "caFile": str(tls.ca_cert.resolve())}),
        flush=True,
    )
    await asyncio.gather(*tasks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Studio (classic) and Azure ML emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="plain-HTTP port (0: pick a free one)")
    parser.add_argument("--tls-port", type=int, default=0, help="TLS port for ARM and Azure AD (0: pick a free one)")
    parser.add_argument("--config", type=Path, help="JSON config; default: the seed's example services")
    parser.add_argument(
        "--fresh-secrets",
        action="store_true",
        help="replace every key and client secret of the config with a random one (read them from /_emulator/services)",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".emulator"), help="where the CA and certificates go")
    parser.add_argument(
        "--storage-connection-string",
        action="append",
        default=[],
        metavar="CONN",
        help="a storage account Azure ML workspaces may use (repeatable; e.g. Azurite's)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = EmulatorConfig.from_file(args.config) if args.config else default_config()
        if args.fresh_secrets:
            config = with_fresh_secrets(config)
        accounts = (*config.azure_ml.storage_connection_strings, *args.storage_connection_string)
        config = replace(config, azure_ml=replace(config.azure_ml, storage_connection_strings=accounts))
        try:
            Storage(accounts)
        except ValueError as exc:
            raise ConfigError(f"storage connection string: {exc}") from None
    except ConfigError as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 2
    port = args.port or free_port(args.host)
    tls_port = args.tls_port or free_port(args.host)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, port, tls_port, config, args.state_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
