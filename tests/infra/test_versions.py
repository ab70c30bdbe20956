"""One set of versions: uv.lock is what the venvs, the layers and the stack's Powertools use."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from typing import Any

import pytest

from chat.config import AUTH_COGNITO
from chat.functions import functions_for
from infra.layers import LOCK, PYPROJECT, build_layer, layer_group, locked_requirements, uv
from infra.settings import DEFAULTS
from tests.infra.conftest import ROOT, Synth

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, list[str]]:
    """Package name -> the versions uv.lock has for it (one, unless markers fork it)."""
    versions: dict[str, list[str]] = {}
    for package in tomllib.loads(LOCK.read_text())["package"]:
        versions.setdefault(canonical(package["name"]), []).append(package["version"])
    return versions


def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


def test_the_lock_agrees_with_pyproject() -> None:
    # Fails when a dependency was added to (or changed in) pyproject.toml without `uv lock`.
    result = subprocess.run(
        [uv(), "lock", "--check", "--offline", "--project", str(ROOT)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_lock_was_written_by_the_pinned_uv() -> None:
    required = pyproject()["tool"]["uv"]["required-version"]
    assert re.fullmatch(r"==\d+\.\d+\.\d+", required)  # exact: the Makefile installs it
    version = subprocess.run(
        [uv(), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert f"=={version}" == required


def test_the_lock_has_hashes_for_the_lambda_wheels() -> None:
    # The layers install with --require-hashes: every locked wheel carries its sha256, and
    # the ones Lambda needs (CPython 3.13, Linux arm64) are among them.
    packages = tomllib.loads(LOCK.read_text())["package"]
    wheels = [wheel for package in packages for wheel in package.get("wheels", ())]
    assert wheels and all(wheel["hash"].startswith("sha256:") for wheel in wheels)
    httptools = next(p for p in packages if p["name"] == "httptools")
    assert any("cp313" in w["url"] and "aarch64" in w["url"] for w in httptools["wheels"])


def test_every_dependency_has_a_tested_floor() -> None:
    # Honest ranges: a floor on every direct requirement (CI installs the floors: `make
    # floors`), and an upper bound on the libraries whose internals the code touches.
    project = pyproject()["project"]
    requirements = [*project["dependencies"]]
    for extra, listed in project["optional-dependencies"].items():
        requirements += [r for r in listed if not r.startswith(f"{project['name']}[")]
        assert extra  # every extra is a named set
    for requirement in requirements:
        assert ">=" in requirement, f"{requirement} has no floor"
    bounded = {canonical(NAME.match(r)[0]): r for r in requirements if "<" in r}
    assert {"moto", "aws-lambda-powertools"} <= set(bounded)


def test_the_local_set_is_enough_for_the_gateway_and_nothing_more() -> None:
    # `make dev` installs the runtime dependencies and the local extra only.
    extras = pyproject()["project"]["optional-dependencies"]
    local = {canonical(NAME.match(r)[0]) for r in extras["local"]}
    assert {"aiohttp", "moto"} <= local
    assert not local & {"aws-cdk-lib", "playwright", "cfn-lint", "pytest"}


def test_powertools_layer_version_is_the_locked_one() -> None:
    (version,) = locked()["aws-lambda-powertools"]
    assert DEFAULTS["powertools_version"] == version
    cdk = json.loads((ROOT / "cdk.json").read_text())
    assert cdk["context"]["powertools_version"] == version


def test_the_stack_names_the_locked_powertools_for_its_runtime(synth: Synth) -> None:
    (version,) = locked()["aws-lambda-powertools"]
    runtime = f"python{DEFAULTS['python_runtime']}"
    parameters = synth.raw["Parameters"]
    (name,) = [k for k in parameters if "powertools" in k.lower()]
    assert parameters[name]["Default"] == (
        f"/aws/service/powertools/python/arm64/{runtime}/{version}"
    )
    functions = [r for r in synth.raw["Resources"].values()
                 if r["Type"] == "AWS::Lambda::Function" and "Handler" in r["Properties"]
                 and r["Properties"]["Handler"].startswith("chat.")]
    assert functions and {f["Properties"]["Runtime"] for f in functions} == {runtime}


def test_the_python_runtime_is_a_deploy_setting(tmp_path) -> None:
    from tests.infra.conftest import synth_with

    raw = synth_with(tmp_path, python_runtime="3.12").raw
    runtimes = {r["Properties"]["Runtime"] for r in raw["Resources"].values()
                if r["Type"] == "AWS::Lambda::Function"
                and r["Properties"].get("Handler", "").startswith("chat.")}
    assert runtimes == {"python3.12"}
    (parameter,) = [p for k, p in raw["Parameters"].items() if "powertools" in k.lower()]
    assert "/python3.12/" in parameter["Default"]


@pytest.mark.parametrize("value", ["latest", "3.x", ""])
def test_powertools_must_be_an_exact_release(tmp_path, value: str) -> None:
    from tests.infra.conftest import synth_with

    with pytest.raises(ValueError, match="powertools_version"):
        synth_with(tmp_path, powertools_version=value)


def test_layers_name_packages_without_versions_and_install_the_locked_ones() -> None:
    declared = {fn.packages for fn in functions_for(AUTH_COGNITO) if fn.packages}
    assert declared
    versions = locked()
    for packages in declared:
        assert not any(re.search(r"[=<>~!]", p) for p in packages), packages
        assert layer_group(packages).startswith("layer-")
        pinned = dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", locked_requirements(packages),
                                 re.MULTILINE))
        assert pinned and all(version in versions[canonical(name)]
                              for name, version in pinned.items())
        built = build_layer(packages) / "python"
        installed = {
            canonical(m[1]): m[2]
            for d in built.glob("*.dist-info")
            if (m := re.fullmatch(r"(.+)-([^-]+)\.dist-info", d.name))
        }
        assert installed == {canonical(name): v for name, v in pinned.items()}
