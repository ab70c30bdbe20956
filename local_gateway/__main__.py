"""``python -m local_gateway`` (``make dev``, ``chat-local``): the chat on 127.0.0.1.

Runs in the foreground until Ctrl-C, SIGTERM or SIGHUP, then closes every connection
(running its ``$disconnect``), compacts the tables' journal in ``--state-dir`` and exits
0, promptly, so a test or ``make dev`` can start it again on the same port at once. If
moto's process is killed, it stops and exits 1 (every write moto confirmed is kept); a
saved state it cannot use is refused with one line saying what to do (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from chat.config import SETTINGS as FUNCTION_SETTINGS
from local_gateway import logs
from local_gateway.gateway import Gateway
from local_gateway.journal import StateError
from local_gateway.settings import REPO_ROOT, GatewaySettings

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _parser() -> argparse.ArgumentParser:
    defaults = GatewaySettings()
    p = argparse.ArgumentParser(
        prog="python -m local_gateway",
        description="A local API Gateway WebSocket stage running the chat's Lambda handlers "
                    "against an in-process DynamoDB (moto). Nothing reaches AWS.",
    )
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 3000),
                   help="port on 127.0.0.1 (default: $PORT or 3000; 0 picks a free one)")
    p.add_argument("--state-dir", type=Path, default=Path(".local"),
                   help="where the tables are saved across restarts (default: .local)")
    p.add_argument("--no-state", action="store_true",
                   help="keep everything in memory only")
    p.add_argument("--frontend-dir", type=Path, default=REPO_ROOT / "frontend",
                   help="static files served at / (default: <repo>/frontend)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="log every event and response, and the handlers' INFO logs")
    p.add_argument("--from-cdk-out", type=Path, metavar="DIR",
                   help="serve a synthesized app (npx cdk synth -o DIR) instead of the "
                        "source tree: each function from its code asset and layers, under "
                        "awslambdaric on Python 3.13, with the template's environment")
    limits = p.add_argument_group("limits (defaults: API Gateway's and the CDK app's)")
    limits.add_argument("--max-frame-bytes", type=int, default=defaults.max_frame_bytes)
    limits.add_argument("--max-message-bytes", type=int, default=defaults.max_message_bytes)
    limits.add_argument("--idle-timeout", type=float, default=defaults.idle_timeout_s,
                        metavar="SECONDS")
    limits.add_argument("--max-connection-age", type=float, default=defaults.max_connection_s,
                        metavar="SECONDS")
    limits.add_argument("--handler-timeout", type=float, default=defaults.handler_timeout_s,
                        metavar="SECONDS",
                        help="every function's timeout (default: each its own, as deployed)")
    limits.add_argument("--max-concurrency", type=int, default=defaults.max_concurrency,
                        help="execution environments per function")
    limits.add_argument("--save-interval", type=float, default=defaults.save_interval_s,
                        metavar="SECONDS")
    limits.add_argument("--throttle-rate-limit", type=float,
                        default=defaults.throttle_rate_limit, metavar="PER_SECOND",
                        help="the stage's steady rate of client frames (default: cdk.json's)")
    limits.add_argument("--throttle-burst-limit", type=int,
                        default=defaults.throttle_burst_limit, metavar="N",
                        help="the stage's burst of client frames (default: cdk.json's)")
    limits.add_argument("--max-frames-in-flight", type=int,
                        default=defaults.max_frames_in_flight, metavar="N",
                        help="frames one connection may have waiting or running; more are "
                             "answered 'Too Many Requests'")
    limits.add_argument("--max-buffered-bytes", type=int,
                        default=defaults.max_buffered_bytes, metavar="BYTES",
                        help="unread bytes on one socket before @connections answers 429")
    functions = p.add_argument_group(
        "function settings (defaults: chat.config, as the CDK app deploys them)")
    for setting in FUNCTION_SETTINGS:
        choices = getattr(setting, "choices", ())
        if choices:  # a word, e.g. --auth none|cognito
            functions.add_argument(setting.flag, choices=choices, default=setting.default,
                                   dest=setting.key, help=setting.help)
        else:
            functions.add_argument(setting.flag, type=_positive, default=setting.default,
                                   metavar="N", dest=setting.key, help=setting.help)
    return p


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a positive whole number, not {raw!r}")
    return value


def settings_from_args(argv: list[str] | None = None) -> GatewaySettings:
    a = _parser().parse_args(argv)
    return GatewaySettings(
        port=a.port,
        state_dir=None if a.no_state else a.state_dir,
        frontend_dir=a.frontend_dir,
        verbose=a.verbose,
        max_frame_bytes=a.max_frame_bytes,
        max_message_bytes=a.max_message_bytes,
        idle_timeout_s=a.idle_timeout,
        max_connection_s=a.max_connection_age,
        handler_timeout_s=a.handler_timeout,
        max_concurrency=a.max_concurrency,
        save_interval_s=a.save_interval,
        throttle_rate_limit=a.throttle_rate_limit,
        throttle_burst_limit=a.throttle_burst_limit,
        max_frames_in_flight=a.max_frames_in_flight,
        max_buffered_bytes=a.max_buffered_bytes,
        function_settings={
            s.env_var: str(getattr(a, s.key)) for s in FUNCTION_SETTINGS if s.env_var},
        trigger_settings={s.key: getattr(a, s.key) for s in FUNCTION_SETTINGS if not s.env_var},
    )


async def serve(settings: GatewaySettings, app: Any = None) -> int:
    started = time.monotonic()
    # app: a cdk_out.DeployedApp (--from-cdk-out), or None for chat.functions.
    gateway = Gateway(settings, **(app.gateway_kwargs() if app is not None else {}))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    ended: list[int | None] = []

    def moto_ended(code: int | None) -> None:
        # moto's process was killed: nothing can be stored any more. Every write it
        # confirmed is in the journal; stop, so that a restart picks them up.
        ended.append(code)
        print(f"moto's process (DynamoDB, SQS) ended unexpectedly (exit code {code}): "
              f"stopping. Every write it confirmed is kept; start the gateway again.",
              file=sys.stderr, flush=True)
        stop.set()

    gateway.dynamodb.on_exit = lambda code: loop.call_soon_threadsafe(moto_ended, code)
    # Ctrl-C, SIGTERM (kill, a process manager, timeout) and SIGHUP (a closing terminal),
    # to the gateway or its whole process group: stop cleanly. moto's process ignores
    # them and is in a group of its own, so it is still there to finish with.
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    await gateway.start()
    state = (f"tables saved in {settings.state_dir}/" if settings.state_dir
             else "tables in memory only")
    print(
        f"Local chat gateway ready in {time.monotonic() - started:.1f} s "
        f"(stage 'local', functions from {app.source if app else 'chat.functions'}, "
        f"DynamoDB on moto, {state})\n"
        f"  Page:       {gateway.http_url}/\n"
        f"  WebSocket:  {gateway.websocket_url}\n"
        f"{_how_to_connect(gateway)}"
        f"Ctrl-C to stop.",
        flush=True,
    )
    await stop.wait()
    print("Stopping: closing connections and saving state...", flush=True)
    await gateway.stop()
    print(f"Stopped ({gateway.stats.invocations} invocations, "
          f"{gateway.stats.errors} failed).", flush=True)
    return 1 if ended else 0


def _how_to_connect(gateway: Gateway) -> str:
    if gateway.cognito is None or gateway.cognito.pool is None:
        return (f"  wscat:      npx wscat -c '{gateway.websocket_url}?username=alice"
                f"&room=general'\n")
    return (
        f"  Sign-in:    Cognito (moto) at {gateway.cognito.endpoint(gateway.http_url)}, "
        f"pool {gateway.cognito.pool.pool_id}. No email is sent: ANY confirmation code "
        f"works locally.\n"
        f"  wscat:      npx wscat -c '{gateway.websocket_url}?room=general' "
        f"-s chat.v1 -s bearer.$ID_TOKEN\n"
    )


def main(argv: list[str] | None = None) -> int:
    settings = settings_from_args(argv)
    app = None
    cdk_out = _parser().parse_args(argv).from_cdk_out
    if cdk_out is not None:  # exits 1, saying why, if it cannot be served
        from local_gateway.cdk_out import deployed_app
        app = deployed_app(cdk_out, settings)
    # Every line, whichever library writes it, with sign-in tokens redacted (logs.py).
    logs.install(level=logging.INFO, fmt="%(asctime)s.%(msecs)03d %(message)s",
                 datefmt="%H:%M:%S")
    # botocore/moto chatter is not what a developer watching the chat wants to read.
    for noisy in ("botocore", "boto3", "werkzeug", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return asyncio.run(serve(settings, app))
    except StateError as exc:
        print(exc, file=sys.stderr)  # one line: which file, and what to do
        return 1
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"Port {settings.port} on {settings.host} is already in use: stop the "
                  f"other process or pick another port (PORT=3001 make dev, or --port).",
                  file=sys.stderr)
            return 1
        raise
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
