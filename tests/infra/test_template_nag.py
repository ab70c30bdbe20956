"""cdk-nag (AwsSolutions) on the synthesized app: no finding left, each exception explained.

The synth itself fails on an unacknowledged nag error (``conftest.synth``); this reads the
report it wrote. ``test_infra_constructs`` checks that guard on a stack made to fail it.
"""

from __future__ import annotations

import json

from tests.infra.conftest import Synth


def test_cdk_nag_passes_and_every_acknowledgement_has_a_reason(synth: Synth) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    for finding in nag["suppressedViolations"]:
        assert len(finding["reason"]) >= 30, finding["ruleName"]
