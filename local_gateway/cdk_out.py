"""A synthesized app (``cdk.out``), read as Lambda and API Gateway would read it.

``python -m local_gateway --from-cdk-out cdk.out`` and ``make rehearse`` serve what
``cdk deploy`` would ship, not the source tree: everything a function gets comes from
the template and its assets.

- **Functions**: each ``AWS::Lambda::Function`` with its handler string, code asset (the
  task root), layers, memory, timeout and environment variables, and the trigger the
  template wires to it (an API route's integration, the ``$connect`` authorizer, an SQS
  event source mapping, a user pool's pre sign-up trigger). They become
  ``DeployedFunction``: a ``chat.functions.Function`` the gateway routes to as usual,
  run by ``runtime_api`` under awslambdaric instead of ``runtime``.
- **Layers**: a ``AWS::Lambda::LayerVersion`` asset holds arm64 wheels, which cannot load
  here. Its twin for this machine (x86_64, Python 3.13) is installed from ``uv.lock``
  with hashes, exactly the packages and versions the asset's ``*.dist-info`` name (a
  package the lock does not have, or at another version, is an error). The Powertools
  layer is named by an SSM parameter whose path holds its version
  (``/aws/service/powertools/python/arm64/python3.13/3.37.0``): that version is
  installed, with its dependencies as locked. ``latest`` cannot be rehearsed (nobody
  knows today what it will be at deploy time) and is refused.
- **The runtime**: what Lambda's managed Python runtime brings in ``/var/runtime``:
  boto3/botocore (the locked ones: AWS updates the runtime's without a deploy) and
  awslambdaric, the runtime interface client, in a folder of their own after the
  layers on the path, and a Python 3.13 venv with nothing installed as the interpreter.
- **Values**: CloudFormation refs in the environment (a table's ``Ref``, a queue's URL,
  the stage's callback URL, the user pool's issuer and JWKS URL) are resolved to the
  local resources by what they refer to, never by the variable's name, so a variable
  wired to the wrong resource fails here too.

Everything built is cached under ``.build/rehearsal/`` (git-ignored), keyed by what was
installed, so reruns need no network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from chat.config import Setting
from chat.functions import (
    ConnectAuthorizer,
    Function,
    QueueConsumer,
    Route,
    UserPoolTrigger,
)
from chat.queues import QUEUES, QueueSpec
from chat.tables import TABLES, TableSpec
from local_gateway.settings import REPO_ROOT

BUILD = REPO_ROOT / ".build" / "rehearsal"
LOCK = REPO_ROOT / "uv.lock"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
URL_SUFFIX = "amazonaws.com"
ARCHITECTURE = "x86_64"  # this machine; the template's arm64 wheels cannot load here
PYTHON_VERSION = "3.13"
# What Lambda's managed Python runtime has in /var/runtime, besides the standard library.
RUNTIME_PACKAGES = ("boto3", "awslambdaric")
# Lambda's Python 3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34): wheels tagged
# manylinux2014 up to manylinux_2_34, for this machine's architecture.
_UV_PLATFORM = "x86_64-manylinux_2_34"
_DONE = ".complete"
_POWERTOOLS_PARAMETER = re.compile(
    r"^/aws/service/powertools/python/(?P<arch>[^/]+)/(?P<runtime>[^/]+)/(?P<version>[^/]+)$")
# Lambda refuses these in a function's environment (they are its own).
RESERVED = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})


class CdkOutError(Exception):
    """The assembly cannot be served as it is (says what and why)."""


# -- the template ------------------------------------------------------------------------


class LayerRef(NamedTuple):
    """One of a function's layers, in the template's order."""

    logical_id: str
    asset_dir: Path | None  # a LayerVersion built from an asset
    powertools_version: str | None  # the official Powertools layer, by SSM parameter
    label: str  # for a reader


@dataclass(frozen=True, eq=False)
class DeployedFunction(Function):
    """A function as the template declares it (``Function`` for the gateway's routing)."""

    logical_id: str = ""
    code_dir: Path = Path()
    layers: tuple[LayerRef, ...] = ()
    variables: Mapping[str, Any] = field(default_factory=dict)  # unresolved template values
    runtime: str = ""
    architectures: tuple[str, ...] = ()

    @property
    def writes(self) -> bool:
        # The template says nothing the gateway could use about which calls write: save
        # the state after every invocation of it (only ever more often than needed).
        return True

    def environment(self, values: Mapping[str, str]) -> dict[str, str]:
        # The runner resolves ``variables`` against the local resources itself
        # (``DeployedApp.environment``); nothing comes from the host's declarations.
        return {}


def _path(resource: Mapping[str, Any]) -> str:
    return str(resource.get("Metadata", {}).get("aws:cdk:path", ""))


def _construct_id(resource: Mapping[str, Any], logical_id: str) -> str:
    """The construct's own id: ``ServerlessChat/Api/NewMessageFunction/Resource`` ->
    ``NewMessageFunction``."""
    parts = _path(resource).split("/")
    if len(parts) >= 2 and parts[-1] == "Resource":
        return parts[-2]
    return parts[-1] or logical_id


def _refs_in(value: Any) -> Iterable[str]:
    """Every logical id a value refers to (``Ref`` or ``Fn::GetAtt``)."""
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            yield value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            yield target[0] if isinstance(target, list) else str(target).split(".")[0]
        for item in value.values():
            yield from _refs_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs_in(item)


class CloudAssembly:
    """One stack of a ``cdk.out`` directory: its template and asset folders."""

    def __init__(self, outdir: Path | str, stack: str | None = None) -> None:
        self.outdir = Path(outdir).resolve()
        manifest_file = self.outdir / "manifest.json"
        if not manifest_file.is_file():
            raise CdkOutError(f"{self.outdir} has no manifest.json: is it a cdk.out folder? "
                              f"(`npx cdk synth` writes one)")
        artifacts = json.loads(manifest_file.read_text())["artifacts"]
        stacks = {name: a for name, a in artifacts.items()
                  if a.get("type") == "aws:cloudformation:stack"}
        if stack is None:
            if len(stacks) != 1:
                raise CdkOutError(f"{self.outdir} has {len(stacks)} stacks; name one")
            stack = next(iter(stacks))
        if stack not in stacks:
            raise CdkOutError(f"no stack {stack!r} in {self.outdir}")
        self.stack_name = stack
        template_file = self.outdir / stacks[stack]["properties"]["templateFile"]
        self.template: dict[str, Any] = json.loads(template_file.read_text())
        self.resources: dict[str, dict[str, Any]] = self.template.get("Resources", {})
        self.parameters: dict[str, dict[str, Any]] = self.template.get("Parameters", {})

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == kind}

    def properties(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties", {})

    def asset_dir(self, logical_id: str) -> Path:
        resource = self.resources[logical_id]
        asset = resource.get("Metadata", {}).get("aws:asset:path")
        if not asset:
            raise CdkOutError(f"{logical_id} has no asset in {self.outdir}")
        path = self.outdir / asset
        if not path.is_dir():
            raise CdkOutError(f"{logical_id}'s asset {path} is not a folder (a zip?)")
        return path

    # -- what the gateway emulates ---------------------------------------------------

    def route_selection_expression(self) -> str | None:
        apis = self.of_type("AWS::ApiGatewayV2::Api")
        return next((a["Properties"].get("RouteSelectionExpression") for a in apis.values()),
                    None)

    def page_dir(self) -> Path | None:
        """The page's files as the stack's bucket deployment ships them (the asset with
        ``index.html``; ``config.json`` is the gateway's own)."""
        for deployment in self.resources.values():
            if not str(deployment.get("Type", "")).startswith("Custom::CDKBucketDeployment"):
                continue
            for key in deployment.get("Properties", {}).get("SourceObjectKeys", []):
                folder = self.outdir / f"asset.{str(key).removesuffix('.zip')}"
                if (folder / "index.html").is_file():
                    return folder
        return None

    def stage_throttle(self) -> tuple[float, int] | None:
        """The stage's default route throttle: (rate per second, burst)."""
        for stage in self.of_type("AWS::ApiGatewayV2::Stage").values():
            route = stage["Properties"].get("DefaultRouteSettings", {})
            if "ThrottlingRateLimit" in route and "ThrottlingBurstLimit" in route:
                return float(route["ThrottlingRateLimit"]), int(route["ThrottlingBurstLimit"])
        return None

    def stage_name(self) -> str:
        stages = self.of_type("AWS::ApiGatewayV2::Stage")
        return next((s["Properties"]["StageName"] for s in stages.values()), "")

    def api_ids(self) -> list[str]:
        return list(self.of_type("AWS::ApiGatewayV2::Api"))

    def _function_behind(self, uri: Any) -> str | None:
        functions = self.of_type("AWS::Lambda::Function")
        return next((ref for ref in _refs_in(uri) if ref in functions), None)

    def triggers(self) -> dict[str, list[Any]]:
        """Each function's triggers, by the function's logical id."""
        found: dict[str, list[Any]] = {}
        integrations = self.of_type("AWS::ApiGatewayV2::Integration")
        for route in self.of_type("AWS::ApiGatewayV2::Route").values():
            props = route["Properties"]
            integration = next((r for r in _refs_in(props.get("Target")) if r in integrations),
                               None)
            if integration is None:
                continue
            fn = self._function_behind(integrations[integration]["Properties"].get(
                "IntegrationUri"))
            if fn is not None:
                found.setdefault(fn, []).append(Route(props["RouteKey"]))
        for authorizer in self.of_type("AWS::ApiGatewayV2::Authorizer").values():
            props = authorizer["Properties"]
            fn = self._function_behind(props.get("AuthorizerUri"))
            if fn is not None:
                found.setdefault(fn, []).append(
                    ConnectAuthorizer(identity_source=tuple(props.get("IdentitySource", ()))))
        queues = self.queue_specs()
        for mapping in self.of_type("AWS::Lambda::EventSourceMapping").values():
            props = mapping["Properties"]
            fn = next((r for r in _refs_in(props.get("FunctionName"))
                       if r in self.of_type("AWS::Lambda::Function")), None)
            queue = next((r for r in _refs_in(props.get("EventSourceArn")) if r in queues),
                         None)
            if fn is None or queue is None:
                continue
            if "ReportBatchItemFailures" not in props.get("FunctionResponseTypes", []):
                raise CdkOutError(f"{fn}'s event source does not report batch item failures, "
                                  f"which the gateway's poller assumes")
            concurrency = int(props.get("ScalingConfig", {}).get("MaximumConcurrency", 1000))
            found.setdefault(fn, []).append(QueueConsumer(
                queue=queues[queue], batch_size=int(props.get("BatchSize", 10)),
                max_concurrency=Setting(f"template_{fn}_max_concurrency", None, concurrency,
                                        "the template's ScalingConfig.MaximumConcurrency")))
        for pool in self.of_type("AWS::Cognito::UserPool").values():
            lambdas = pool["Properties"].get("LambdaConfig", {})
            for operation, value in lambdas.items():
                fn = self._function_behind(value)
                if fn is not None and operation == "PreSignUp":
                    found.setdefault(fn, []).append(UserPoolTrigger("pre_sign_up"))
        return found

    def mock_routes(self) -> dict[str, str]:
        """Routes answered by a MOCK integration: route key -> the reply template."""
        replies = {}
        integrations = self.of_type("AWS::ApiGatewayV2::Integration")
        responses = self.of_type("AWS::ApiGatewayV2::IntegrationResponse")
        for route in self.of_type("AWS::ApiGatewayV2::Route").values():
            props = route["Properties"]
            integration = next((r for r in _refs_in(props.get("Target")) if r in integrations),
                               None)
            if integration is None or (integrations[integration]["Properties"]
                                       .get("IntegrationType") != "MOCK"):
                continue
            for response in responses.values():
                rp = response["Properties"]
                if integration in list(_refs_in(rp.get("IntegrationId"))):
                    replies[props["RouteKey"]] = rp.get("ResponseTemplates", {}).get(
                        "$default", "")
        return replies

    def table_specs(self) -> dict[str, TableSpec]:
        """The tables by logical id, each checked against ``chat.tables``' declaration
        of the same name (the gateway creates those)."""
        declared = {spec.logical_id: spec for spec in TABLES}
        specs = {}
        for logical_id, table in self.of_type("AWS::DynamoDB::Table").items():
            name = _construct_id(table, logical_id)
            props = table["Properties"]
            keys = {k["KeyType"]: k["AttributeName"] for k in props.get("KeySchema", [])}
            ttl = props.get("TimeToLiveSpecification", {})
            spec = declared.get(name)
            if spec is None:
                raise CdkOutError(f"table {logical_id} ({name}) is not in chat.tables")
            found = (keys.get("HASH"), keys.get("RANGE"),
                     ttl.get("AttributeName") if ttl.get("Enabled") else None)
            if found != (spec.partition_key, spec.sort_key, spec.ttl_attribute):
                raise CdkOutError(f"table {logical_id}: keys/TTL {found} differ from "
                                  f"chat.tables' {name}")
            specs[logical_id] = spec
        return specs

    def queue_specs(self) -> dict[str, QueueSpec]:
        """The queues by logical id (dead-letter queues by their main queue's spec)."""
        declared = {spec.logical_id: spec for spec in QUEUES}
        specs = {}
        for logical_id, queue in self.of_type("AWS::SQS::Queue").items():
            name = _construct_id(queue, logical_id)
            if name in declared:
                spec = declared[name]
                timeout = queue["Properties"].get("VisibilityTimeout")
                if timeout is not None and int(timeout) != spec.visibility_timeout_s:
                    raise CdkOutError(f"queue {logical_id}: visibility timeout {timeout} is not "
                                      f"chat.queues' {spec.visibility_timeout_s}")
                specs[logical_id] = spec
        return specs

    def dead_letter_queues(self) -> dict[str, QueueSpec]:
        """Dead-letter queues by logical id, with the spec of the queue that uses them."""
        out = {}
        for logical_id, spec in self.queue_specs().items():
            policy = self.properties(logical_id).get("RedrivePolicy", {})
            for ref in _refs_in(policy):
                out[ref] = spec
        return out

    def layers(self, value: Any) -> LayerRef:
        """What a function's ``Layers`` entry is."""
        ref = value.get("Ref") if isinstance(value, dict) else None
        if ref in self.parameters:
            default = str(self.parameters[ref].get("Default", ""))
            match = _POWERTOOLS_PARAMETER.match(default)
            if match is None:
                raise CdkOutError(f"layer parameter {ref} ({default}) is not a Powertools layer")
            return LayerRef(ref, None, match["version"], f"Powertools {match['version']} "
                                                          f"(SSM {default})")
        if ref in self.of_type("AWS::Lambda::LayerVersion"):
            asset = self.asset_dir(ref)
            return LayerRef(ref, asset, None, f"{_construct_id(self.resources[ref], ref)} "
                                              f"({asset.name[:18]}…)")
        raise CdkOutError(f"layer {value!r} is neither an asset nor the Powertools layer")

    def functions(self) -> tuple[DeployedFunction, ...]:
        """Every function the chat's triggers reach, as the gateway will run it."""
        triggers = self.triggers()
        out = []
        for logical_id, resource in self.of_type("AWS::Lambda::Function").items():
            found = triggers.get(logical_id, [])
            if not found:
                continue  # e.g. CDK's BucketDeployment handler: CloudFormation runs it
            if len(found) > 1:
                raise CdkOutError(f"{logical_id} has several triggers ({found}); the local "
                                  f"gateway runs a function behind one")
            props = resource["Properties"]
            name = _construct_id(resource, logical_id).removesuffix("Function")
            variables = props.get("Environment", {}).get("Variables", {})
            reserved = sorted(RESERVED & set(variables))
            if reserved:
                raise CdkOutError(f"{name} sets Lambda's reserved {', '.join(reserved)}")
            out.append(DeployedFunction(
                name=name,
                handler=props["Handler"],
                trigger=found[0],
                description=props.get("Description", ""),
                memory_mb=int(props.get("MemorySize", 128)),
                timeout_s=int(props.get("Timeout", 3)),
                logical_id=logical_id,
                code_dir=self.asset_dir(logical_id),
                layers=tuple(self.layers(v) for v in props.get("Layers", [])),
                variables=variables,
                runtime=props.get("Runtime", ""),
                architectures=tuple(props.get("Architectures", ["x86_64"])),
            ))
        return tuple(out)

    def untriggered_functions(self) -> dict[str, str]:
        """Functions nothing the chat does reaches (name -> handler): CloudFormation's."""
        triggers = self.triggers()
        return {_construct_id(r, k): r["Properties"].get("Handler", "")
                for k, r in self.of_type("AWS::Lambda::Function").items() if k not in triggers}


# -- resolving CloudFormation values ---------------------------------------------------


class Resolver:
    """Evaluates ``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub`` and ``Fn::Select``
    against the local resources; anything else is an error that names it."""

    def __init__(self, refs: Mapping[str, str], attributes: Mapping[tuple[str, str], str],
                 stack_name: str) -> None:
        self.refs = {
            "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
            "AWS::URLSuffix": URL_SUFFIX, "AWS::StackName": stack_name, **refs,
        }
        self.attributes = attributes

    def __call__(self, value: Any, where: str = "") -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, dict) and len(value) == 1:
            (fn, arg), = value.items()
            if fn == "Ref" and arg in self.refs:
                return self.refs[arg]
            if fn == "Fn::GetAtt":
                target = tuple(arg) if isinstance(arg, list) else tuple(arg.split(".", 1))
                if target in self.attributes:
                    return self.attributes[target]
            if fn == "Fn::Join":
                sep, items = arg
                return sep.join(self(item, where) for item in items)
            if fn == "Fn::Select":
                index, items = arg
                return self(items[int(index)], where)
            if fn == "Fn::Sub" and isinstance(arg, str):
                return re.sub(r"\$\{([^}!]+)\}", lambda m: self._sub(m[1], where), arg)
        raise CdkOutError(f"{where}: cannot resolve {json.dumps(value)} to a local resource")

    def _sub(self, name: str, where: str) -> str:
        if "." in name:
            return self({"Fn::GetAtt": name.split(".", 1)}, where)
        return self({"Ref": name}, where)


# -- building what Lambda would give the functions -------------------------------------


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, dict[str, Any]]:
    if not LOCK.is_file():
        raise CdkOutError(f"{LOCK} is missing: the rehearsal installs from it")
    packages = tomllib.loads(LOCK.read_text())["package"]
    return {_normalize(p["name"]): p for p in packages}


def locked_version(name: str) -> str:
    try:
        return str(_lock()[_normalize(name)]["version"])
    except KeyError:
        raise CdkOutError(f"{name} is not in {LOCK}") from None


def _closure(names: Iterable[str], lock: Mapping[str, dict[str, Any]]) -> list[str]:
    """The packages ``names`` need, as uv.lock resolves them (markers for Linux/CPython
    3.13 are all true for these packages; extras are followed when named)."""
    seen: list[str] = []
    todo = [_normalize(n) for n in names]
    while todo:
        name = todo.pop()
        base, _, extra = name.partition("[")
        if base not in lock:
            raise CdkOutError(f"{base} is not in {LOCK}")
        entry = lock[base]
        if base not in seen:
            seen.append(base)
            todo += [_normalize(d["name"]) for d in entry.get("dependencies", [])
                     if _marker_holds(d.get("marker"))]
        if extra:
            for dep in entry.get("optional-dependencies", {}).get(extra.rstrip("]"), []):
                if _marker_holds(dep.get("marker")):
                    todo.append(_normalize(dep["name"]))
    return sorted(seen)


def _marker_holds(marker: str | None) -> bool:
    """uv.lock's dependency markers, evaluated for Lambda's Linux CPython 3.13."""
    if not marker:
        return True
    try:
        from packaging.markers import Marker
    except ImportError:  # packaging comes with pip/setuptools; be conservative without it
        return True
    return Marker(marker).evaluate({
        "python_version": PYTHON_VERSION, "python_full_version": f"{PYTHON_VERSION}.0",
        "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
        "platform_machine": ARCHITECTURE, "implementation_name": "cpython",
        "platform_python_implementation": "CPython", "extra": "",
    })


def requirements_from_lock(pins: Mapping[str, str | None]) -> str:
    """``name==version --hash=…`` lines for ``pins`` (name -> version, None: the locked
    one), every hash uv.lock records for that version: pip refuses anything else."""
    lock = _lock()
    lines = []
    for name, version in sorted(pins.items()):
        entry = lock.get(_normalize(name))
        if entry is None:
            raise CdkOutError(f"{name} is not in {LOCK}")
        if version is not None and entry["version"] != version:
            raise CdkOutError(f"{name}: the asset has {version}, {LOCK.name} has "
                              f"{entry['version']}")
        hashes = [w["hash"] for w in entry.get("wheels", [])]
        if "sdist" in entry:
            hashes.append(entry["sdist"]["hash"])
        lines.append(f"{entry['name']}=={entry['version']} " + " ".join(
            f"--hash={h}" for h in hashes))
    return "\n".join(lines) + "\n"


def dist_infos(folder: Path) -> dict[str, str]:
    """The packages installed in a ``python/`` folder: name -> version."""
    found = {}
    for meta in folder.glob("*.dist-info/METADATA"):
        headers = {}
        for line in meta.read_text(errors="replace").splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            headers.setdefault(key.strip(), value.strip())
        found[_normalize(headers["Name"])] = headers["Version"]
    return found


def _install(requirements: str, out: Path, *, compile_: bool) -> Path:
    """Install pinned, hashed requirements for Linux x86_64 CPython 3.13 into
    ``out/python`` (cached: ``out`` is named by the requirements)."""
    if (out / _DONE).is_file():
        return out
    # A staging folder of this process's own: two rehearsals may build the same folder.
    staging = out.with_name(f"{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "requirements.txt").write_text(requirements)
    # uv, the project's installer (a venv synced by uv has no pip), with Lambda's Python
    # itself so that the .pyc files are 3.13's.
    command = [
        _uv(), "pip", "install", "--quiet", "--no-config", "--require-hashes", "--no-deps",
        "--only-binary", ":all:", "--python", find_python313(),
        "--python-platform", _UV_PLATFORM, "--python-version", PYTHON_VERSION,
        "--compile-bytecode" if compile_ else "--no-compile-bytecode",
        "--target", str(staging / "python"), "-r", str(staging / "requirements.txt"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise CdkOutError(f"installing into {out} failed (uv needs PyPI the first time; "
                          f"reruns reuse {BUILD}):\n{result.stderr[-2000:]}")
    shutil.rmtree(staging / "python" / "bin", ignore_errors=True)
    (staging / "requirements.txt").rename(staging / _DONE)
    if (out / _DONE).is_file():  # another process finished it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
        return out
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return out


def _uv() -> str:
    """The uv that installs this project, found as ``infra/layers.py``'s ``uv()`` finds
    it for the layers (``$UV``, the Makefile's ``.build/uv-<version>/``...). That module
    is loaded from the checkout by its path: ``infra`` is the CDK app's folder, not an
    installed package, and the module needs only the standard library."""
    path = REPO_ROOT / "infra" / "layers.py"
    spec = importlib.util.spec_from_file_location("_infra_layers", path)
    assert spec is not None and spec.loader is not None
    layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layers)
    try:
        return layers.uv()
    except FileNotFoundError as error:
        raise CdkOutError(str(error)) from None


def _keyed(kind: str, requirements: str) -> Path:
    key = hashlib.sha256(json.dumps([requirements, _UV_PLATFORM, PYTHON_VERSION]).encode())
    return BUILD / f"{kind}-{key.hexdigest()[:16]}"


def build_layer_twin(asset_dir: Path) -> Path:
    """The asset layer's packages, same names and versions (from uv.lock, hashed), for
    this machine. Laid out as the asset is: compiled only if the asset is."""
    packages = dist_infos(asset_dir / "python")
    if not packages:
        raise CdkOutError(f"layer {asset_dir} has no packages in python/")
    requirements = requirements_from_lock(packages)
    compiled = any((asset_dir / "python").rglob("__pycache__"))
    out = _install(requirements, _keyed("layer", requirements), compile_=compiled)
    twin = dist_infos(out / "python")
    if twin != packages:
        raise CdkOutError(f"the x86_64 twin of {asset_dir.name} has {twin}, the asset "
                          f"{packages}")
    return out


def build_powertools(version: str) -> Path:
    """The official Powertools layer's package at ``version``, with its locked
    dependencies (AWS builds the real one; its .pyc files are kept here too)."""
    if version == "latest":
        raise CdkOutError("the template names Powertools' layer 'latest', which SSM resolves "
                          "at deploy time: pin powertools_version (cdk.json) to rehearse it")
    locked = locked_version("aws-lambda-powertools")
    if locked != version:
        raise CdkOutError(f"the template's Powertools layer is {version}, uv.lock has "
                          f"{locked}: the tests would not import what is deployed")
    names = _closure(["aws-lambda-powertools"], _lock())
    requirements = requirements_from_lock(dict.fromkeys(names))
    return _install(requirements, _keyed("powertools", requirements), compile_=True)


def build_runtime() -> Path:
    """Lambda's ``/var/runtime``: the locked boto3/botocore and awslambdaric (compiled, as
    the managed runtime ships them)."""
    names = _closure(RUNTIME_PACKAGES, _lock())
    requirements = requirements_from_lock(dict.fromkeys(names))
    return _install(requirements, _keyed("runtime", requirements), compile_=True)


def find_python313() -> str:
    """A CPython 3.13: ``$REHEARSAL_PYTHON``, pyenv's 3.13.x, or ``python3.13``."""
    explicit = os.environ.get("REHEARSAL_PYTHON")
    if explicit:
        return explicit
    pyenv = shutil.which("pyenv")
    if pyenv:
        versions = subprocess.run([pyenv, "versions", "--bare"], capture_output=True,  # noqa: S603
                                  text=True, check=False).stdout.split()
        for version in sorted((v for v in versions if v.startswith(PYTHON_VERSION + ".")),
                              reverse=True):
            found = subprocess.run([pyenv, "which", "python"], capture_output=True,  # noqa: S603
                                   text=True, check=False,
                                   env={**os.environ, "PYENV_VERSION": version}).stdout.strip()
            if found:
                return found
    found = shutil.which(f"python{PYTHON_VERSION}")
    if found:
        return found
    raise CdkOutError(f"no Python {PYTHON_VERSION} here: install it (pyenv install "
                      f"{PYTHON_VERSION}) or set REHEARSAL_PYTHON")


def build_interpreter() -> Path:
    """A Python 3.13 venv with nothing installed: the runtime's interpreter, whose
    site-packages hold nothing a function could lean on by accident."""
    base = find_python313()
    version = subprocess.run([base, "-c", "import sys; print(sys.version.split()[0])"],  # noqa: S603
                             capture_output=True, text=True, check=True).stdout.strip()
    if not version.startswith(PYTHON_VERSION + "."):
        raise CdkOutError(f"{base} is Python {version}, not {PYTHON_VERSION}")
    out = BUILD / f"python{version}"
    python = out / "bin" / "python"
    if not (out / _DONE).is_file():
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([base, "-m", "venv", "--without-pip", str(out)], check=True)  # noqa: S603
        (out / _DONE).write_text(base)
    return python


class Layout(NamedTuple):
    """Where each piece of the functions' environment is on this machine."""

    python: Path
    runtime_dir: Path  # like /var/runtime
    layer_dirs: dict[str, Path]  # LayerRef.logical_id -> the folder whose python/ is on the path
    powertools_version: str | None


def prepare(functions: Iterable[DeployedFunction]) -> Layout:
    """Build (or find cached) the interpreter, the runtime folder and every layer's twin."""
    layer_dirs: dict[str, Path] = {}
    powertools = None
    for fn in functions:
        for layer in fn.layers:
            if layer.logical_id in layer_dirs:
                continue
            if layer.powertools_version is not None:
                powertools = layer.powertools_version
                layer_dirs[layer.logical_id] = build_powertools(layer.powertools_version)
            else:
                assert layer.asset_dir is not None
                layer_dirs[layer.logical_id] = build_layer_twin(layer.asset_dir)
    return Layout(build_interpreter(), build_runtime() / "python", layer_dirs, powertools)


# -- the local resources the template's refs resolve to --------------------------------


class LocalResources(NamedTuple):
    """What the gateway has running, for the resolver."""

    table_names: Mapping[TableSpec, str]
    queue_urls: Mapping[QueueSpec, str]
    queue_arns: Mapping[QueueSpec, str]
    dead_letter_urls: Mapping[QueueSpec, str]
    api_id: str
    user_pool_id: str | None
    user_pool_client_id: str | None


def resolver_for(assembly: CloudAssembly, local: LocalResources) -> Resolver:
    refs: dict[str, str] = {}
    attributes: dict[tuple[str, str], str] = {}
    for logical_id, spec in assembly.table_specs().items():
        refs[logical_id] = local.table_names[spec]
        attributes[(logical_id, "Arn")] = (
            f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{local.table_names[spec]}")
    for logical_id, spec in assembly.queue_specs().items():
        refs[logical_id] = local.queue_urls[spec]
        attributes[(logical_id, "Arn")] = local.queue_arns[spec]
        attributes[(logical_id, "QueueUrl")] = local.queue_urls[spec]
        attributes[(logical_id, "QueueName")] = local.queue_urls[spec].rsplit("/", 1)[-1]
    for logical_id, spec in assembly.dead_letter_queues().items():
        refs[logical_id] = local.dead_letter_urls[spec]
    for logical_id in assembly.api_ids():
        refs[logical_id] = local.api_id
    for logical_id in assembly.of_type("AWS::Cognito::UserPool"):
        if local.user_pool_id:
            refs[logical_id] = local.user_pool_id
    for logical_id in assembly.of_type("AWS::Cognito::UserPoolClient"):
        if local.user_pool_client_id:
            refs[logical_id] = local.user_pool_client_id
    return Resolver(refs, attributes, assembly.stack_name)


def redirect(value: str, redirects: Mapping[str, str]) -> str:
    """An AWS URL the stand-ins serve, pointed at them (longest prefix first)."""
    for prefix in sorted(redirects, key=len, reverse=True):
        if value.startswith(prefix):
            return redirects[prefix] + value[len(prefix):]
    return value


# -- the synthesized app, served by the local gateway ----------------------------------


class DeployedApp:
    """A ``cdk.out`` stack as the local gateway serves it (``--from-cdk-out``): its
    functions under awslambdaric against the gateway's Runtime API, with what the
    template gives them and nothing from this project's venv or source tree.

    ``overrides``: function settings (variable -> value) given on the command line; each
    replaces the template's value in the functions whose template sets that variable
    (as a redeploy with ``-c key=value`` would), and no other.
    """

    def __init__(self, outdir: Path | str, *, stack: str | None = None,
                 overrides: Mapping[str, str] | None = None) -> None:
        self.assembly = CloudAssembly(outdir, stack)
        self.functions = self._marked(self.assembly.functions())
        if not self.functions:
            raise CdkOutError(f"{self.assembly.outdir}: no function behind any route, "
                              f"authorizer, queue or user pool")
        expression = self.assembly.route_selection_expression()
        if expression not in (None, "$request.body.action"):
            raise CdkOutError(f"route selection {expression!r}: the gateway routes by "
                              f"$request.body.action only")
        self.tables = tuple(dict.fromkeys(self.assembly.table_specs().values()))
        self.mock_routes = self.assembly.mock_routes()
        self.overrides = dict(overrides or {})
        self.layout: Layout | None = None
        self.pool: Any = None  # the RuntimeApiPool, once the gateway has made it

    @property
    def source(self) -> str:
        """What the functions come from, for the banner."""
        return f"{self.assembly.outdir} (awslambdaric)"

    @property
    def auth(self) -> str:
        """The auth mode the template was synthesized in (its $connect authorizer)."""
        cognito = any(isinstance(fn.trigger, ConnectAuthorizer) for fn in self.functions)
        return "cognito" if cognito else "none"

    def prepare(self) -> Layout:
        """Build or find the interpreter, the runtime folder and the layers (blocking)."""
        if self.layout is None:
            self.layout = prepare(self.functions)
        return self.layout

    def gateway_kwargs(self) -> dict[str, Any]:
        """What ``Gateway(settings, **kwargs)`` needs to serve this app."""
        return {"functions": self.functions, "tables": self.tables,
                "mock_routes": self.mock_routes, "runner": self.runner}

    def _marked(self, functions: Iterable[DeployedFunction]) -> tuple[DeployedFunction, ...]:
        """The functions, those given the user pool's values marked ``verifies_tokens``
        (the gateway then runs Cognito)."""
        pools = set(self.assembly.of_type("AWS::Cognito::UserPool")) | set(
            self.assembly.of_type("AWS::Cognito::UserPoolClient"))
        return tuple(dataclasses.replace(fn, verifies_tokens=True)
                     if pools & set(_refs_in(dict(fn.variables))) else fn for fn in functions)

    def trigger_settings(self) -> dict[str, int]:
        """The template's event source concurrency, by the setting key the gateway reads."""
        return {fn.trigger.max_concurrency.key: int(fn.trigger.max_concurrency.default)
                for fn in self.functions if isinstance(fn.trigger, QueueConsumer)}

    def configure(self, settings: Any) -> Any:
        """``settings`` (a ``GatewaySettings``) given what the template sets for the
        stage and the triggers: its throttle, each event source's concurrency, and the
        page the bucket deployment ships."""
        settings.trigger_settings.update(self.trigger_settings())
        page = self.assembly.page_dir()
        if page is not None and settings.frontend_dir == REPO_ROOT / "frontend":
            settings.frontend_dir = page  # unless --frontend-dir said otherwise
        throttle = self.assembly.stage_throttle()
        if throttle is not None:
            settings.throttle_rate_limit, settings.throttle_burst_limit = throttle
        return settings

    def runner(self, gateway: Any) -> Any:
        """The gateway's function pool (called by ``Gateway.start`` once its resources
        exist): a ``runtime_api.RuntimeApiPool`` with each function's recipe."""
        from local_gateway.dynamodb import DUMMY_CREDENTIALS
        from local_gateway.events import API_ID
        from local_gateway.runtime_api import Recipe, RuntimeApiPool, lambda_environment

        layout = self.prepare()
        queues = gateway.queues
        pool = gateway.cognito.pool if gateway.cognito is not None else None
        resolve = resolver_for(self.assembly, LocalResources(
            table_names=gateway.dynamodb.table_names,
            queue_urls=queues.urls,
            queue_arns={spec: queues.arn(name) for spec, name in queues.names.items()},
            dead_letter_urls=queues.dead_letter_urls,
            api_id=API_ID,
            user_pool_id=pool.pool_id if pool else None,
            user_pool_client_id=pool.client_id if pool else None,
        ))
        moto = gateway.dynamodb.endpoint_url
        # AWS URLs a function may be given, pointed at the gateway's stand-ins.
        redirects = {
            f"https://{API_ID}.execute-api.{REGION}.{URL_SUFFIX}/{self.assembly.stage_name()}":
                gateway.callback_url,
        }
        if gateway.cognito is not None:
            redirects[f"https://cognito-idp.{REGION}.{URL_SUFFIX}/"] = (
                gateway.cognito.endpoint(gateway.http_url))
        by_name = {fn.name: fn for fn in self.functions}

        def recipe(config: Any) -> Recipe:
            fn = by_name[config.name]
            variables = {}
            for key, raw in fn.variables.items():
                value = resolve(raw, f"{fn.name}'s {key}")
                if key in self.overrides:
                    value = self.overrides[key]
                # TOKEN_ISSUER stays the issuer the tokens name; URLs the functions call
                # go to the stand-ins.
                variables[key] = value if key.endswith("_ISSUER") else redirect(value,
                                                                                 redirects)
            layers = [layout.layer_dirs[layer.logical_id] for layer in fn.layers]
            environment = {
                **variables,
                **lambda_environment(
                    name=fn.name, handler=fn.handler, memory_mb=fn.memory_mb,
                    task_root=fn.code_dir, runtime_dir=layout.runtime_dir, layer_dirs=layers,
                    python=layout.python),
                # The execution role's credentials: moto's dummy ones.
                "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                "AWS_SESSION_TOKEN": "local",
                # boto3's per-service endpoints: DynamoDB, SQS and Cognito are moto's; any
                # other service too, so nothing ever reaches AWS.
                "AWS_ENDPOINT_URL_DYNAMODB": moto,
                "AWS_ENDPOINT_URL_SQS": moto,
                "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": moto,
                "AWS_ENDPOINT_URL": moto,
            }
            return Recipe(
                command=(str(layout.python), "-B", "-m", "awslambdaric", fn.handler),
                cwd=fn.code_dir, environment=environment)

        self.pool = RuntimeApiPool(recipe, verbose=gateway.settings.verbose)
        return self.pool



def deployed_app(outdir: Path, settings: Any) -> DeployedApp:
    """``--from-cdk-out DIR``: the app, its folders built, ``settings`` given the
    template's trigger settings; a clear message and exit 1 if it cannot be served.

    Function settings given on the command line (``--fanout-shard-size 2``) override the
    template's where it sets them; ``--auth`` must be the mode the app was synthesized in
    (``npx cdk synth -c auth=cognito``)."""
    from chat.config import AUTH
    from chat.config import SETTINGS as FUNCTION_SETTINGS

    defaults = {s.env_var: str(s.default) for s in FUNCTION_SETTINGS if s.env_var}
    overrides = {k: v for k, v in settings.function_settings.items()
                 if k != AUTH.env_var and defaults.get(k) != v}
    try:
        app = DeployedApp(outdir, overrides=overrides)
        if settings.auth != AUTH.default and settings.auth != app.auth:
            raise CdkOutError(f"{outdir} was synthesized with auth={app.auth}: synthesize "
                              f"it with -c auth={settings.auth} to serve that")
        app.configure(settings)
        print(f"Preparing {app.source} (Python {PYTHON_VERSION}, layers for this machine; "
              f"cached in {BUILD.relative_to(REPO_ROOT)}/)...", flush=True)
        app.prepare()
    except CdkOutError as exc:
        print(f"Cannot serve {outdir}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    return app
