"""``make rehearse``: the deploy rehearsal. What ``cdk deploy`` would ship, run here.

For each auth mode it synthesizes the app (``npx cdk synth``, this venv's Python, a small
``fanout_shard_size`` so that a room of a few people is a big room), serves the
synthesized ``cdk.out`` with the local gateway (``cdk_out.DeployedApp``: every function
from its code asset and layers, on Python 3.13 under awslambdaric, against the gateway's
Runtime API, with only the template's environment), and drives it over real sockets:

- ``auth=none``: every route the template has, each at least once (frames for the
  routes PROTOCOL.md names, with the answer each must bring; a route it does not know
  is sent ``{"action": <route>}`` and must be answered without a function error),
  the mock routes (``ping``), ``$default`` with a frame that is not JSON, a big room's
  message through the fan-out queue (every member must receive it), and ``$disconnect``;
- ``auth=cognito``: a sign-up the pre sign-up function refuses and one it accepts
  (through the local Cognito), a handshake the authorizer refuses (401) and one it
  allows, a message under the verified name, then all of the above with every
  connection signed in (each handshake through the authorizer).

It prints one line per function (its handler, code asset, layers and the Runtime API
calls it made) and a verdict, and exits 1 if anything failed: a function that was not
invoked, a Runtime API error or init error nobody expected, a line logged at ERROR nobody
expected, a crash or timeout, an answer missing, or a gateway "Internal server error".
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from chat.functions import ConnectAuthorizer, QueueConsumer, Route, UserPoolTrigger
from local_gateway.cdk_out import BUILD, CdkOutError, DeployedApp, dist_infos
from local_gateway.settings import REPO_ROOT, GatewaySettings
from local_gateway.testing import GatewayThread

SHARD_SIZE = 2  # members per shard: a room of five is a big room
BIG_ROOM_MEMBERS = 5
PASSWORD = "Rehearsal-1!"  # noqa: S105 - a local user's; meets chat.identity's policy
WAIT_S = 60.0  # for an answer; cold starts on two busy cores take seconds

# What each route PROTOCOL.md names is sent, and the event type that proves it ran
# (received by anyone in the room). Routes not listed are sent {"action": key}.
FRAMES: dict[str, tuple[dict[str, Any], str | None]] = {
    "new_message": ({"text": "rehearsal", "client_id": "r-1"}, "message"),
    "history": ({}, "history"),
    "who": ({}, "who"),
    "typing": ({}, "typing"),
    "rooms": ({}, "rooms"),
    "edit_message": ({"id": "{id}", "text": "rehearsal, edited"}, "message_updated"),
    "react": ({"id": "{id}", "emoji": "👍", "on": True}, "reactions"),
    "mark_read": ({"id": "{id}"}, "read_marker"),
    "delete_message": ({"id": "{id}"}, "message_deleted"),
}
# new_message first (the others need its id), delete_message last.
_ORDER = ["new_message", "history", "who", "typing", "edit_message", "react", "mark_read",
          "rooms"]


class Failure(Exception):
    pass


# -- synth -------------------------------------------------------------------------------


class Synth:
    """``npx cdk synth`` into ``outdir`` with this Python, in the background."""

    def __init__(self, auth: str, outdir: Path, shard_size: int) -> None:
        npx = shutil.which("npx")
        if npx is None:
            raise Failure("npx is not on PATH (Node.js): the rehearsal synthesizes with the "
                          "CDK CLI")
        self.auth = auth
        self.started = time.monotonic()
        shutil.rmtree(outdir, ignore_errors=True)
        env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
        command = [npx, "cdk", "synth", "--quiet", "--app", f"{sys.executable} infra/app.py",
                   "-o", str(outdir), "-c", f"auth={auth}",
                   "-c", f"fanout_shard_size={shard_size}"]
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, text=True,  # noqa: S603
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait(self) -> float:
        """The seconds it took; Failure with its output if it failed."""
        output, _ = self.process.communicate()
        if self.process.returncode != 0:
            raise Failure(f"cdk synth (auth={self.auth}) failed:\n{output[-3000:]}")
        return time.monotonic() - self.started


# -- a client ------------------------------------------------------------------------------


class Client:
    """A WebSocket client whose frames are read in a thread and kept, to wait on."""

    def __init__(self, url: str, subprotocols: list[str] | None = None) -> None:
        from websockets.sync.client import connect

        self.ws = connect(url, subprotocols=subprotocols, open_timeout=WAIT_S,  # type: ignore[arg-type]
                          close_timeout=5)
        self.frames: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            for raw in self.ws:
                try:
                    frame = json.loads(raw)
                except ValueError:
                    frame = {"raw": raw}
                with self._changed:
                    self.frames.append(frame)
                    self._changed.notify_all()
        except ConnectionClosed:
            pass

    def send(self, frame: dict[str, Any] | str) -> None:
        self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    def wait(self, test: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        with self._changed:
            while True:
                for frame in self.frames:
                    if test(frame):
                        return frame
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure(f"no {what} within {WAIT_S:.0f} s (got {self.frames[-5:]})")
                self._changed.wait(left)

    def close(self) -> None:
        self.ws.close()
        self._thread.join(timeout=10)


def gateway_errors(clients: list[Client]) -> list[dict[str, Any]]:
    """API Gateway's own answers to a failed integration, and 'internal' errors."""
    return [f for c in clients for f in c.frames
            if f.get("message") == "Internal server error" or f.get("code") == "internal"]


# -- one mode ----------------------------------------------------------------------------


class Run:
    """One auth mode: the served app and what is checked on it."""

    def __init__(self, app: DeployedApp, gw: GatewayThread, mode: str) -> None:
        self.app = app
        self.gw = gw
        self.mode = mode
        self.expected_errors: dict[str, int] = {}
        self.required: set[str] = set()  # functions that must have answered
        self.notes: list[str] = []
        # username -> ID token (auth=cognito: every connection is signed in).
        self.sign_in: Callable[[str], str] | None = None

    def connect(self, clients: ExitStack, room: str, username: str) -> Client:
        """A connection of ``username`` to ``room``: by name in the open mode, with a
        token of the local Cognito's when signed in."""
        if self.sign_in is None:
            return clients.enter_context(_client(self.url(room, username)))
        return clients.enter_context(_client(self.url(room), ["chat.v1",
                                                              "bearer." + self.sign_in(username)]))

    def counts(self, name: str) -> Any:
        return self.app.pool.get(name).counts

    def finished(self, name: str) -> int:
        c = self.counts(name)
        return c.response + c.error + c.init_error + c.timeouts + c.crashes

    def wait_finished(self, name: str, before: int, what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while self.finished(name) <= before:
            if time.monotonic() > deadline:
                raise Failure(f"{name} did not finish an invocation for {what}")
            time.sleep(0.02)

    def function_for(self, kind: type, key: str | None = None) -> str:
        for fn in self.app.functions:
            if isinstance(fn.trigger, kind) and (key is None or getattr(
                    fn.trigger, "key", None) == key):
                return fn.name
        raise Failure(f"the template has no {kind.__name__} {key or ''}")

    def url(self, room: str, username: str = "") -> str:
        query = f"room={room}" + (f"&username={username}" if username else "")
        return f"{self.gw.websocket_url}?{query}"


def drive_routes(run: Run, clients: ExitStack) -> None:
    """Every route of the template, a big room, $default and $disconnect."""
    routes = [fn.trigger.key for fn in run.app.functions if isinstance(fn.trigger, Route)]
    # Two connections (a shard's worth): typing and read markers go to the second.
    room = "rehearsal"
    alice = run.connect(clients, room, "alice")
    alice2 = run.connect(clients, room, "alice")
    everyone = [alice, alice2]
    run.required.add(run.function_for(Route, "$connect"))
    message_id = ""
    keyed = [k for k in _ORDER if k in routes]
    keyed += sorted(k for k in routes if not k.startswith("$") and k not in _ORDER
                    and k != "delete_message")
    keyed += [k for k in routes if k == "delete_message"]
    for key in keyed:
        name = run.function_for(Route, key)
        run.required.add(name)
        body, expected = FRAMES.get(key, ({"client_id": f"r-{key}"}, None))
        frame = {"action": key, **{k: (v.replace("{id}", message_id) if isinstance(v, str)
                                       else v) for k, v in body.items()}}
        before = run.finished(name)
        seen = {id(c): len(c.frames) for c in everyone}
        alice.send(frame)
        try:
            run.wait_finished(name, before, key)
            if expected in ("typing", "read_marker"):  # to the sender's other connection
                alice2.wait(lambda f, t=expected: f.get("type") == t,
                            f"'{expected}' after {key}")
            elif expected is not None:  # to the sender, or an error, or API Gateway's
                got = alice.wait(lambda f, t=expected: f.get("type") in (t, "error")
                                 or f.get("message") == "Internal server error",
                                 f"'{expected}' after {key}")
                if key == "new_message" and got.get("type") == "message":
                    message_id = got["id"]
            new = [f for c in everyone for f in c.frames[seen[id(c)]:]]
            errors = [f for f in new if (f.get("type") == "error" and key in FRAMES)
                      or f.get("message") == "Internal server error"
                      or f.get("code") == "internal"]
            if errors:
                raise Failure(f"{key} was answered with {errors[0]}")
        except Failure as exc:
            tail = "\n".join(f"      {line}" for line in list(run.counts(name).output)[-12:])
            raise Failure(f"{exc}\n    {name}'s last output:\n{tail}") from None
    # Routes API Gateway answers itself (MOCK integrations): the template's reply.
    for key, reply in run.app.mock_routes.items():
        alice.send({"action": key})
        wanted = json.loads(reply)
        alice.wait(lambda f, w=wanted: f == w, f"{reply} from the {key} mock route")
    # $default: not JSON.
    name = run.function_for(Route, "$default")
    run.required.add(name)
    alice.send("this is not json")
    alice.wait(lambda f: f.get("code") == "invalid_json", "invalid_json from $default")
    # A big room: more members than a shard, so new_message hands shards to the queue.
    worker = run.function_for(QueueConsumer)
    run.required.add(worker)
    members = [run.connect(clients, "big-room", f"m{n}") for n in range(BIG_ROOM_MEMBERS)]
    before = run.finished(worker)
    members[0].send({"action": "new_message", "text": "to everyone", "client_id": "big-1"})
    for member in members:
        member.wait(lambda f: f.get("type") == "message" and f.get("text") == "to everyone",
                    "the big room's message")
    run.wait_finished(worker, before, "the big room's shards")
    run.notes.append(f"big room: {BIG_ROOM_MEMBERS} members, shards of {SHARD_SIZE}, "
                     f"{run.finished(worker) - before} fan-out worker invocation(s)")
    # $disconnect.
    name = run.function_for(Route, "$disconnect")
    run.required.add(name)
    before = run.finished(name)
    alice2.close()
    run.wait_finished(name, before, "$disconnect")
    failed = gateway_errors(everyone + members)
    if failed:
        raise Failure(f"the gateway answered a failed integration: {failed[0]}")


def drive_sign_in(run: Run, clients: ExitStack) -> None:
    """auth=cognito: the pre sign-up check, the authorizer, a message under the verified
    name; then every connection of ``drive_routes`` is signed in."""
    import boto3

    with urllib.request.urlopen(run.gw.http_url + "/config.json", timeout=WAIT_S) as answer:  # noqa: S310
        auth = json.load(answer)["auth"]
    cognito = boto3.client("cognito-idp", endpoint_url=auth["endpoint"],
                           region_name=auth["region"], aws_access_key_id="unused",
                           aws_secret_access_key="unused")  # noqa: S106 - moto's
    check = run.function_for(UserPoolTrigger)
    authorizer = run.function_for(ConnectAuthorizer)
    run.required |= {check, authorizer, run.function_for(Route, "$connect"),
                     run.function_for(Route, "new_message")}
    try:
        cognito.sign_up(ClientId=auth["clientId"], Username="<bad>", Password=PASSWORD,
                        UserAttributes=[{"Name": "email", "Value": "bad@example.com"}])
        raise Failure("the pre sign-up check let '<bad>' sign up")
    except cognito.exceptions.UserLambdaValidationException:
        run.expected_errors[check] = run.expected_errors.get(check, 0) + 1
    tokens: dict[str, str] = {}

    def sign_in(username: str) -> str:
        if username not in tokens:
            cognito.sign_up(ClientId=auth["clientId"], Username=username, Password=PASSWORD,
                            UserAttributes=[{"Name": "email",
                                             "Value": f"{username}@example.com"}])
            cognito.confirm_sign_up(ClientId=auth["clientId"], Username=username,
                                    ConfirmationCode="123456")  # any code works locally
            tokens[username] = cognito.initiate_auth(
                ClientId=auth["clientId"], AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
            )["AuthenticationResult"]["IdToken"]
        return tokens[username]

    token = sign_in("ana")
    from websockets.exceptions import InvalidStatus

    try:
        with _client(run.url("signed-in"), ["chat.v1", "bearer.not-a-token"]):
            raise Failure("the authorizer let a made-up token in")
    except InvalidStatus as exc:
        if exc.response.status_code != 401:
            raise Failure(f"a made-up token got HTTP {exc.response.status_code}, not 401") from None
        run.expected_errors[authorizer] = run.expected_errors.get(authorizer, 0) + 1
    ana = clients.enter_context(_client(run.url("signed-in", "mallory"), ["chat.v1",
                                                                           "bearer." + token]))
    sender = run.function_for(Route, "new_message")
    before = run.finished(sender)
    ana.send({"action": "new_message", "text": "signed in", "client_id": "s-1"})
    got = ana.wait(lambda f: f.get("type") == "message", "ana's message")
    run.wait_finished(sender, before, "ana's message")
    if got.get("username") != "ana":
        raise Failure(f"the message went out as {got.get('username')!r}, not the verified 'ana'")
    run.notes.append("sign-in: a refused sign-up, a 401 handshake, a message as the verified "
                     "username; then every route as signed-in users")
    failed = gateway_errors([ana])
    if failed:
        raise Failure(f"the gateway answered a failed integration: {failed[0]}")
    run.sign_in = sign_in
    drive_routes(run, clients)


@contextmanager
def _client(url: str, subprotocols: list[str] | None = None) -> Iterator[Client]:
    client = Client(url, subprotocols)
    try:
        yield client
    finally:
        client.close()


# -- the report ----------------------------------------------------------------------------


def _layers(app: DeployedApp, fn: Any) -> str:
    parts = []
    for layer in fn.layers:
        if layer.powertools_version:
            parts.append(f"Powertools {layer.powertools_version}")
        elif layer.asset_dir is not None:
            packages = dist_infos(layer.asset_dir / "python")
            parts.append(" ".join(f"{n} {v}" for n, v in sorted(packages.items())))
    return " + ".join(parts) or "none"


def report(run: Run) -> list[str]:
    """One line per function, and the failures found in the counts."""
    failures = []
    width = max(len(fn.name) for fn in run.app.functions)
    handler_width = max(len(fn.handler) for fn in run.app.functions)
    for fn in run.app.functions:
        c = run.counts(fn.name)
        expected = run.expected_errors.get(fn.name, 0)
        problems = []
        if fn.name in run.required and c.response == 0:
            problems.append("never answered")
        if c.error != expected:
            problems.append(f"{c.error} error(s), {expected} expected "
                            f"({dict(c.error_types)})")
        if c.error_logs and not expected:
            problems.append(f"{c.error_logs} line(s) logged at ERROR")
        if c.init_error:
            problems.append(f"init error ({dict(c.error_types)})")
        if c.crashes or c.timeouts:
            problems.append(f"{c.crashes} crash(es), {c.timeouts} timeout(s)")
        inits = f" ({', '.join(f'{ms:.0f}' for ms in c.init_ms)} ms)" if c.init_ms else ""
        cold = f"cold starts {c.cold_starts}{inits}" if c.cold_starts else "not started"
        verdict = "ok" if not problems else "FAILED: " + "; ".join(problems)
        if fn.name not in run.required and not problems:
            verdict = "ok (not driven in this mode)" if c.response == 0 else "ok"
        print(f"  {fn.name:<{width}}  {fn.handler:<{handler_width}}  code {fn.code_dir.name[:18]}"
              f"  layers: {_layers(run.app, fn)}  Runtime API: next {c.next}, response "
              f"{c.response}, error {c.error}, init-error {c.init_error}; {cold}  {verdict}",
              flush=True)
        if problems:
            failures.append(f"{run.mode}: {fn.name}: {'; '.join(problems)}")
            tail = list(c.output)[-12:]
            if tail:
                print("    its last output:\n" + "\n".join(f"      {line}" for line in tail))
    for name, handler in run.app.assembly.untriggered_functions().items():
        print(f"  {name[:width + 20]}  {handler}: not rehearsed (a CloudFormation custom "
              f"resource's handler, run at deploy time, not by the chat)")
    for note in run.notes:
        print(f"  ({note})")
    return failures


# -- main -----------------------------------------------------------------------------------


def rehearse_mode(mode: str, outdir: Path, *, synth_s: float, verbose: bool) -> list[str]:
    started = time.monotonic()
    app = DeployedApp(outdir)
    if app.auth != mode:
        raise Failure(f"{outdir} was synthesized with auth={app.auth}, not {mode}")
    layout = app.prepare()
    prepare_s = time.monotonic() - started
    settings = app.configure(GatewaySettings(port=0, state_dir=None, verbose=verbose))
    shown = outdir.relative_to(REPO_ROOT) if outdir.is_relative_to(REPO_ROOT) else outdir
    print(f"auth={mode}: {shown} (synth {synth_s:.1f} s, layers and runtime ready in "
          f"{prepare_s:.1f} s; "
          f"Python {layout.python.parent.parent.name.removeprefix('python')}, "
          f"runtime {layout.runtime_dir.parent.name})", flush=True)
    failures: list[str] = []
    with GatewayThread(settings, **app.gateway_kwargs()) as gw:
        run = Run(app, gw, mode)
        driven = time.monotonic()
        try:
            with ExitStack() as clients:
                (drive_sign_in if mode == "cognito" else drive_routes)(run, clients)
        except (Failure, OSError, TimeoutError) as exc:
            failures.append(f"{mode}: {exc}")
        except Exception as exc:  # a client library's error: still a failed rehearsal
            failures.append(f"{mode}: {type(exc).__name__}: {exc}")
        failures += report(run)
        print(f"  (driven in {time.monotonic() - driven:.1f} s)", flush=True)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_gateway.rehearse",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--auth", choices=("none", "cognito"), action="append",
                        help="rehearse this mode (repeatable; default: both)")
    parser.add_argument("--cdk-out-root", type=Path, default=BUILD,
                        help="where each mode's cdk.out goes (default: .build/rehearsal/)")
    parser.add_argument("--skip-synth", action="store_true",
                        help="serve the cdk.out folders already there")
    parser.add_argument("--fanout-shard-size", type=int, default=SHARD_SIZE,
                        help="synthesized with -c fanout_shard_size=N (default: %(default)s, "
                             f"so that a room of {BIG_ROOM_MEMBERS} is a big room)")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="the gateway's log and every function's output")
    parser.add_argument("--measure", type=int, metavar="MEMBERS",
                        help="instead: a new_message to MEMBERS and the cold starts under "
                             "runtime.py (make dev) and awslambdaric, in one run (JSON)")
    args = parser.parse_args(argv)
    if args.measure:
        logging.basicConfig(level=logging.CRITICAL)
        return measure(args.measure, 5, args.cdk_out_root / "cdk.out-none")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.CRITICAL,
                        format="%(asctime)s.%(msecs)03d %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stdout)
    started = time.monotonic()
    failures: list[str] = []
    modes = args.auth or ["none", "cognito"]
    synths: dict[str, Synth] = {}

    def start(mode: str) -> None:
        if not args.skip_synth and mode not in synths:
            synths[mode] = Synth(mode, args.cdk_out_root / f"cdk.out-{mode}",
                                 args.fanout_shard_size)

    for n, mode in enumerate(modes):
        outdir = args.cdk_out_root / f"cdk.out-{mode}"
        try:
            start(mode)
            synth_s = synths[mode].wait() if mode in synths else 0.0
            if n + 1 < len(modes):
                # The next mode synthesizes while this one is driven (its layers, if any
                # are new, are its own: no two synths build the same folder).
                start(modes[n + 1])
            failures += rehearse_mode(mode, outdir, synth_s=synth_s, verbose=args.verbose)
        except (Failure, CdkOutError) as exc:
            failures.append(f"{mode}: {exc}")
            print(f"auth={mode}: {exc}", flush=True)
    took = time.monotonic() - started
    if failures:
        print(f"REHEARSAL FAILED in {took:.1f} s:\n" + "\n".join(f"  - {f}" for f in failures),
              flush=True)
        return 1
    print(f"REHEARSAL PASSED: auth={' and auth='.join(modes)}, every function from its "
          f"code asset and layers under awslambdaric on Python 3.13, in {took:.1f} s",
          flush=True)
    return 0



# -- measuring: make dev's function processes (runtime.py) vs awslambdaric ---------------


def source_tree_runner(app: DeployedApp) -> Callable[[Any], Any]:
    """``make dev``'s functions (``chat.functions``, the source tree as the task root, the
    gateway's usual environment) run under awslambdaric instead of ``runtime``: the
    layers and runtime folder are the rehearsal's."""
    from local_gateway.runtime_api import Recipe, RuntimeApiPool, lambda_environment

    layout = app.prepare()
    layers = {fn.name: [layout.layer_dirs[layer.logical_id] for layer in fn.layers]
              for fn in app.functions}
    task_root = REPO_ROOT / "functions"

    def runner(gateway: Any) -> Any:
        def recipe(config: Any) -> Recipe:
            environment = {**config.environment, **lambda_environment(
                name=config.name, handler=config.handler, memory_mb=config.memory_mb,
                task_root=task_root, runtime_dir=layout.runtime_dir,
                layer_dirs=layers[config.name], python=layout.python)}
            # No -B: a developer's tree keeps its bytecode, as runtime.py's imports do.
            return Recipe((str(layout.python), "-m", "awslambdaric", config.handler),
                          task_root, environment)

        return RuntimeApiPool(recipe, verbose=gateway.settings.verbose)

    return runner


class _Invocations(logging.Handler):
    """The gateway's one line per invocation, as (label, ms, cold start ms or None)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[tuple[str, float, float | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[3], float):
            extra = str(args[4])
            cold = float(extra.split("cold start ")[1].split(" ms")[0]) if "cold start" in extra \
                else None
            self.seen.append((str(args[0]), args[3], cold))


def measure_one(way: str, kwargs: dict[str, Any], members: int, rounds: int,
                trigger_settings: dict[str, int]) -> dict[str, Any]:
    import statistics

    settings = GatewaySettings(port=0, state_dir=None)
    settings.trigger_settings.update(trigger_settings)
    invocations = _Invocations()
    logger = logging.getLogger("local_gateway")
    logger.addHandler(invocations)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # counted, not printed
    try:
        with GatewayThread(settings, **kwargs) as gw, ExitStack() as stack:
            url = f"{gw.websocket_url}?room=measure&username="
            clients = [stack.enter_context(_client(f"{url}u{n}")) for n in range(members)]
            e2e = []
            for n in range(rounds + 1):
                text = f"round {n}"
                started = time.monotonic()
                clients[0].send({"action": "new_message", "text": text, "client_id": f"m-{n}"})
                for client in clients:
                    client.wait(lambda f, t=text: f.get("type") == "message"
                                and f.get("text") == t, text)
                e2e.append((time.monotonic() - started) * 1000)
            deadline = time.monotonic() + WAIT_S
            while (sum(1 for s in invocations.seen if s[0] == "new_message") < rounds + 1
                   and time.monotonic() < deadline):
                time.sleep(0.01)
    finally:
        logger.removeHandler(invocations)
        logger.propagate = True
    sends = [s for s in invocations.seen if s[0] == "new_message"]
    connects = [s for s in invocations.seen if s[0] == "$connect"]
    return {
        "way": way,
        "connect_cold_start_ms": round(connects[0][2] or 0, 1),
        "connect_first_invocation_ms": round(connects[0][1], 1),
        "new_message_cold_start_ms": round(sends[0][2] or 0, 1),
        "new_message_first_invocation_ms": round(sends[0][1], 1),
        "new_message_first_e2e_ms": round(e2e[0], 1),
        "new_message_warm_invocation_ms_median": round(statistics.median(
            s[1] for s in sends[1:]), 1),
        "new_message_warm_e2e_ms_median": round(statistics.median(e2e[1:]), 1),
    }


def measure(members: int, rounds: int, cdk_out: Path) -> int:
    """A new_message to ``members`` and the cold starts, each way, in one run."""
    import platform

    if not (cdk_out / "manifest.json").is_file():
        Synth("none", cdk_out, SHARD_SIZE).wait()
    # The template's shard size is the rehearsal's small one: one shard of `members` here.
    app = DeployedApp(cdk_out, overrides={"FANOUT_SHARD_SIZE": str(max(members, 1000))})
    app.prepare()
    ways = [
        ("runtime.py (make dev today)", {}),
        ("awslambdaric, source tree", {"runner": source_tree_runner(app)}),
        ("awslambdaric, cdk.out", app.gateway_kwargs()),
    ]
    results = [measure_one(way, kwargs, members, rounds, app.trigger_settings())
               for way, kwargs in ways]
    print(json.dumps({
        "bench": "awslambdaric_vs_runtime", "members": members, "rounds": rounds,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}, "
                   f"gateway Python {platform.python_version()}, functions 3.13 under "
                   f"awslambdaric / {platform.python_version()} forked under runtime.py",
        "results": results,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
