"""``make rehearse``: the synthesized app, run under awslambdaric, passes; a broken one fails.

The rehearsal itself is the test of the deployable artefacts (it exits 1 on any failure);
these tests check that it runs every function the template has and says so, and that it
fails, naming the function, when an asset would not run on Lambda.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from local_gateway.cdk_out import CloudAssembly

from .conftest import rehearse

# The session's rehearsal (two synths) runs in the first test's setup: on two busy
# cores that alone has taken three minutes.
pytestmark = pytest.mark.timeout(900)


def test_the_rehearsal_passes_and_names_every_function(rehearsal) -> None:
    assert rehearsal.code == 0, rehearsal.output
    assert "REHEARSAL PASSED" in rehearsal.output
    for mode in ("none", "cognito"):
        functions = CloudAssembly(rehearsal.root / f"cdk.out-{mode}").functions()
        section = rehearsal.output.split(f"auth={mode}:", 1)[1]
        for fn in functions:
            line = next(line for line in section.splitlines()
                        if line.strip().startswith(fn.name + " "))
            assert fn.handler in line and fn.code_dir.name[:18] in line
            # Driven in both modes, and answered.
            assert "Runtime API: next" in line and line.rstrip().endswith("  ok")
            assert "response 0," not in line


def test_a_handler_string_that_does_not_resolve_fails_the_rehearsal(rehearsal,
                                                                    tmp_path: Path) -> None:
    source = rehearsal.root / "cdk.out-none"
    broken = tmp_path / "cdk.out-none"
    broken.mkdir()
    for item in source.iterdir():  # the assets as they are, the template edited
        if item.suffix != ".json":
            (broken / item.name).symlink_to(item)
        else:
            shutil.copy(item, broken / item.name)
    template_file = broken / "ServerlessChat.template.json"
    template = json.loads(template_file.read_text())
    target = next(r for r in template["Resources"].values()
                  if r["Type"] == "AWS::Lambda::Function"
                  and r["Properties"].get("Handler") == "chat.handlers.routes.who")
    target["Properties"]["Handler"] = "chat.handlers.routes.whom"
    template_file.write_text(json.dumps(template))

    code, output = rehearse("--skip-synth", "--auth", "none", "--cdk-out-root", str(tmp_path))
    assert code == 1, output
    assert "REHEARSAL FAILED" in output
    line = next(line for line in output.splitlines() if line.strip().startswith("Who "))
    assert "chat.handlers.routes.whom" in line and "init-error 1" in line
    assert "Runtime.HandlerNotFound" in output
