"""The stack as a whole: its outputs, and no account or region written into it."""

from __future__ import annotations

import json
import re

from tests.infra.conftest import Synth


def test_outputs(synth: Synth) -> None:
    outputs = synth.raw["Outputs"]
    assert {"WebSocketUrl", "FrontendUrl", "ConnectionsCallbackUrl", "WscatCommand"} <= set(outputs)
    assert outputs["WebSocketUrl"]["Value"]["Fn::Join"][1][0] == "wss://"
    assert outputs["FrontendUrl"]["Value"]["Fn::Join"][1][0] == "https://"
    assert outputs["ConnectionsCallbackUrl"]["Value"]["Fn::Join"][1][0] == "https://"
    wscat = outputs["WscatCommand"]["Value"]["Fn::Join"][1]
    assert wscat[0].startswith("npx wscat -c 'wss://") and "username=" in wscat[-1]


def test_template_is_environment_agnostic(synth: Synth) -> None:
    text = json.dumps(synth.raw)
    assert not re.search(r"\b\d{12}\b", text), "hard-coded account id"
    assert not re.search(r"\b(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d\b", text), "hard-coded region"
