"""`retrain`: run the retraining app locally, start and watch runs, run the demo.

    retrain serve [--settings local.settings.json] [--port N]
    retrain start PIPELINE [--wait] [--blob CONTAINER/NAME] [--dry-run] [--url URL --key KEY]
    retrain status PIPELINE REQUEST_ID [--url URL --key KEY]
    retrain emulator [--port N] [--tls-port N] [--config FILE]
    retrain import-adf FILES...|DIR -o DEFINITION [--settings local.settings.json]
    retrain demo
    retrain runs|models PIPELINE, approve|reject|cancel PIPELINE RUN, rollback PIPELINE [--to RUN]   (devhost.operate)

`serve` without `--settings` starts Azurite and the emulator too, and writes the URL and the
function key to `.devhost/serve.json` (0600), where the other commands find them. Against a
deployed Function App, pass `--url https://APP.azurewebsites.net` and `--key` (a function key).
Exit codes: 0 success, 1 the run did not succeed, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from .files import write_private
from .operate import add_commands
from .progress import Follower

STATE = Path(".devhost") / "serve.json"
CODE_ROOT = Path(__file__).resolve().parents[1]  # the checkout whose code runs


def other_checkout(code_root: Path, cwd: Path) -> str | None:
    """Why `serve` or `demo` must not run here: the working directory is another checkout of this app than the
    one whose code is installed (a shared virtualenv), so it would run that code and keep this one's state."""
    here = next((d for d in (cwd, *cwd.parents) if (d / "function_app.py").is_file()), None)
    if here is None or here.resolve() == code_root.resolve():
        return None
    return (
        f"this checkout ({here}) is not the one whose code this `retrain` runs ({code_root}): the virtualenv is "
        "shared. Run `make setup` here and use this checkout's .venv/bin/retrain, or run from that checkout"
    )


def _connection(args: argparse.Namespace) -> dict[str, str]:
    saved = json.loads(STATE.read_text()) if STATE.exists() else {}
    url = args.url or os.environ.get("RETRAIN_URL") or saved.get("url")
    if not url:
        raise SystemExit("retrain: no Function App URL: pass --url, set RETRAIN_URL, or run `retrain serve`")
    return {
        "url": url.rstrip("/"),
        "key": getattr(args, "key", None) or os.environ.get("RETRAIN_KEY") or saved.get("key", ""),
    }


def serve(args: argparse.Namespace) -> int:
    """Run devhost (and, without --settings, Azurite and the emulator) until SIGINT or SIGTERM.

    The state folder `.devhost/` is locked while it runs: a second `serve` there refuses to start.
    Every child process stops with it, even if it is killed (see devhost.services).
    """
    from .host import DevHost, load_settings
    from .services import FolderLock, ServiceStartError
    from .stack import LocalStack

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("azure", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        lock = FolderLock(STATE.parent, "retrain serve")
    except ServiceStartError as exc:
        print(f"retrain: {exc}", file=sys.stderr)
        return 2
    stack = host = None
    try:
        if args.settings:
            if not args.settings.exists():
                print(f"retrain: {args.settings} not found", file=sys.stderr)
                return 2
            host = DevHost(settings=load_settings(args.settings), port=args.port)
            host.start()
        else:
            stack = LocalStack(STATE.parent / "local").start()
            assert stack.host is not None and stack.azurite is not None and stack.emulator is not None
            stack.load_sample_data()
            host = stack.host
            print(
                f"Azurite:  {stack.azurite.blob_endpoint} (sample data labeledexamples/labeledexamples.arff; initial model published)"
            )
            print(
                f"emulator: {stack.emulator.http_base}  (TLS {stack.emulator.https_base}); "
                f"its services, URLs and keys: {stack.emulator.http_base}/_emulator/services"
            )
        write_private(
            STATE, json.dumps({"url": host.base_url, "key": host.function_key, "eventgridKey": host.eventgrid_key})
        )
        print(f"devhost:  {host.base_url}")
        print(f"function key: {host.function_key}   (also in {STATE}, readable by you only)")
        print(f"  POST {host.base_url}/api/pipelines/<pipeline>/runs   header x-functions-key: <function key>")
        print(f"status page: {host.base_url}/api/status?code={host.function_key}")
        print("stop with Ctrl+C or SIGTERM; everything started here stops with it", flush=True)
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        part = stack or host
        if part is not None:
            part.stop()
        lock.release()
    return 0


def start(args: argparse.Namespace) -> int:
    connection = _connection(args)
    body: dict[str, Any] = {"dryRun": args.dry_run}
    if args.blob:
        body["trainingBlob"] = args.blob
    response = requests.post(
        f"{connection['url']}/api/pipelines/{quote(args.pipeline)}/runs",
        json=body,
        headers={"x-functions-key": connection["key"]},
        timeout=60,
    )
    if response.status_code != 202:
        print(f"retrain: start refused ({response.status_code}): {_error_text(response)}", file=sys.stderr)
        return 2
    started = response.json()
    print(f"{started['action']}: request {started['id']} of pipeline {started['pipeline']}")
    if not args.wait:
        print(started["statusUri"])
        return 0
    follower = Follower(started["statusUri"], connection["key"])
    final = follower.follow()
    record = follower.record(final)
    print(json.dumps(record or final, indent=2))
    return 0 if record and record.get("status") in ("Succeeded", "DryRun") else 1


def status(args: argparse.Namespace) -> int:
    connection = _connection(args)
    url = f"{connection['url']}/api/pipelines/{quote(args.pipeline)}/requests/{quote(args.request_id, safe='')}"
    response = requests.get(url, headers={"x-functions-key": connection["key"]}, timeout=30)
    if response.status_code == 404:
        print(f"retrain: {_error_text(response)}", file=sys.stderr)
        return 1
    if response.status_code not in (200, 202):
        print(f"retrain: the status route answered {response.status_code}: {_error_text(response)}", file=sys.stderr)
        return 2
    view = response.json()
    print(Follower.describe(view))
    print(json.dumps(view, indent=2))
    return 0


def _error_text(response: requests.Response) -> str:
    """The message of the app's JSON error, else a short excerpt of the body."""
    try:
        error = response.json().get("error", {})
        return f"{error.get('message')} (field {error['field']})" if error.get("field") else str(error.get("message"))
    except (ValueError, AttributeError):
        return response.text[:300]


def emulator(args: argparse.Namespace) -> int:
    from emulator.__main__ import main as emulator_main

    forwarded = ["--port", str(args.port), "--tls-port", str(args.tls_port)] + (
        ["--config", str(args.config)] if args.config else []
    )
    return emulator_main(forwarded)


def import_adf(args: argparse.Namespace) -> int:
    from devhost.adf_import import import_adf as run_import
    from retraining.errors import ConfigError

    try:
        result = run_import(args.paths)
    except ConfigError as exc:
        print(f"retrain import-adf: {exc}", file=sys.stderr)
        return 2
    args.output.write_text(json.dumps(result.definition, indent=2) + "\n")
    settings_file = args.settings or args.output.with_name("local.settings.json")
    existing: dict[str, Any] = (
        json.loads(settings_file.read_text()) if settings_file.exists() else {"IsEncrypted": False}
    )
    values: dict[str, str] = existing.setdefault("Values", {})
    values.update(result.settings)
    write_private(settings_file, json.dumps(existing, indent=2) + "\n")
    for line in result.report:
        print(line)
    print(f"wrote {args.output} (no secrets) and {len(result.settings)} app settings to {settings_file}")
    return 0


def demo(_: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo()


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="retrain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("serve", help="run devhost (and Azurite and the emulator unless --settings)")
    p.add_argument("--settings", type=Path)
    p.add_argument("--port", type=int)
    p.set_defaults(handler=serve)
    p = commands.add_parser("start", help="start a run of a pipeline")
    p.add_argument("pipeline")
    p.add_argument("--wait", action="store_true", help="follow the run and print its progress")
    p.add_argument("--blob", help="train on this blob (container/name)")
    p.add_argument("--dry-run", action="store_true", help="train and evaluate, update nothing")
    p.add_argument("--url")
    p.add_argument("--key")
    p.set_defaults(handler=start)
    p = commands.add_parser("status", help="show a request's state and its run's progress")
    p.add_argument("pipeline")
    p.add_argument("request_id")
    p.add_argument("--url")
    p.add_argument("--key")
    p.set_defaults(handler=status)
    p = commands.add_parser("emulator", help="run the Studio (classic) emulator")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls-port", type=int, default=0)
    p.add_argument("--config", type=Path)
    p.set_defaults(handler=emulator)
    p = commands.add_parser("import-adf", help="turn Data Factory JSON into pipeline definitions")
    p.add_argument(
        "paths", nargs="+", type=Path, help="ADF JSON files, directories of them, or markdown with JSON blocks"
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="the pipeline definitions file to write")
    p.add_argument(
        "--settings",
        type=Path,
        help="local settings file for the moved values (default: local.settings.json beside -o)",
    )
    p.set_defaults(handler=import_adf)
    p = commands.add_parser("demo", help="the whole system, start to finish, on this machine")
    p.set_defaults(handler=demo)
    add_commands(commands)
    args = parser.parse_args(argv)
    if args.handler in (serve, demo) and (why := other_checkout(CODE_ROOT, Path.cwd())) is not None:
        print(f"retrain: {why}", file=sys.stderr)
        return 2
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_on_sigterm)  # stop children and clean up, as on Ctrl+C
    try:
        return int(args.handler(args))
    except requests.ConnectionError as exc:
        print(f"retrain: cannot reach the Function App ({exc.__class__.__name__})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
