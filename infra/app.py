"""CDK entry point (``cdk.json`` runs ``.venv/bin/python infra/app.py``).

cdk-nag's AWS Solutions pack and AWS CloudFormation Guard (the Control Tower
proactive controls, ``cdklabs.cdk-validator-cfnguard``) run as policy-validation
plugins: an unacknowledged violation of either fails the synth, so a finding is either
fixed or acknowledged with a reason in ``infra/nag.py`` or ``infra/guard.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The CLI runs this file as a script: make ``infra`` and the functions' ``chat`` package
# importable without relying on how the venv was installed.
for entry in (ROOT, ROOT / "functions"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from aws_cdk import App, Validations  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.guard import guard_validator  # noqa: E402
from infra.stack import ChatStack  # noqa: E402

STACK_NAME = "ServerlessChat"


def build_app(context: dict[str, Any] | None = None, outdir: str | None = None) -> App:
    """The app with its stack, cdk-nag and Guard, unsynthesized (tests synth it in-process)."""
    app = App(context=context, outdir=outdir)
    ChatStack(
        app,
        STACK_NAME,
        description="Serverless real-time WebSocket chat (API Gateway + Lambda + DynamoDB)",
    )
    # Validations' plugins, not App(policy_validation_beta1=...), which CDK deprecates.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), guard_validator())
    return app


if __name__ == "__main__":
    build_app().synth()
