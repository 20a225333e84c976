"""The 01:00 New York deadline: a Prefect automation that notifies when a nightly run is late.

A *proactive* trigger: once a nightly flow run is Running (or Late: no worker picked it up), it
expects that run's `prefect.flow-run.Completed` within the window (120 min: 01:00 for the 23:00
run); a run still running, failed or crashed then fires it, and the server notifies through the
block the user names (Slack webhook, email, ...). prefect.yaml triggers can only run deployments,
so `make deploy-local` (and docs/deployment.md's Cloud Run steps) run `python -m phase4.deadline`
after `prefect deploy --all`; running it again replaces the automation (same name).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Annotated
from uuid import UUID

import typer
from prefect.client.orchestration import get_client
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from phase4.exit_codes import EXIT_BAD_INPUT

AUTOMATION_NAME = "phase4-nightly-deadline"
NIGHTLY_DEPLOYMENT = "phase4-precompute/nightly"
DEFAULT_WINDOW_MINUTES = 120  # 23:00 start -> 01:00 America/New_York
NO_BLOCK = "none"
SUBJECT = "Phase 4 deadline missed: {{ flow_run.name }}"
BODY = (
    "Phase 4 nightly run {{ flow_run.name }} has not completed {minutes} minutes after it"
    " started (the 23:00 run's deadline is 01:00 America/New_York). Current state:"
    " {{ flow_run.state.name }}. Flow run id: {{ flow_run.id }}."
)


def deadline_automation(
    deployment_id: UUID, block_document_id: UUID, window: timedelta
) -> AutomationCore:
    minutes = f"{window.total_seconds() / 60:g}"
    return AutomationCore(
        name=AUTOMATION_NAME,
        description=f"Notify when a {NIGHTLY_DEPLOYMENT} run is not Completed {minutes} min "
        "after it started (01:00 America/New_York for the 23:00 run).",
        enabled=True,
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={
                "prefect.resource.id": f"prefect.deployment.{deployment_id}",
                "prefect.resource.role": "deployment",
            },
            after={"prefect.flow-run.Running", "prefect.flow-run.Late"},
            expect={"prefect.flow-run.Completed"},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=window,
        ),
        actions=[
            SendNotification(
                block_document_id=block_document_id,
                subject=SUBJECT,
                body=BODY.replace("{minutes}", minutes),
            )
        ],
    )


def create_deadline_automation(block: str, window: timedelta) -> UUID:
    """Replace the deadline automation on the current Prefect API; returns its id. A bad
    block setting, or a block or deployment the API lacks, is a one-line ValueError."""
    block_type, _, name = block.strip().partition("/")  # slack-webhook/phase4-alerts
    if not block_type or not name or "/" in name:  # before any network call
        raise ValueError(
            f"PHASE4_DEADLINE_BLOCK={block!r}: write BLOCK_TYPE/NAME, e.g. "
            "slack-webhook/phase4-alerts (`prefect block ls` lists yours), or none"
        )
    with get_client(sync_client=True) as client:
        try:
            document = client.read_block_document_by_name(name, block_type)
        except Exception as exc:  # prefect raises ObjectNotFound; keep the message one line
            raise ValueError(
                f"PHASE4_DEADLINE_BLOCK={block!r}: no such block on {client.api_url}; create it "
                "first (docs/deployment.md, 'The 01:00 deadline')"
            ) from exc
        assert document.id is not None
        try:
            deployment = client.read_deployment_by_name(NIGHTLY_DEPLOYMENT)
        except Exception as exc:
            raise ValueError(
                f"deployment {NIGHTLY_DEPLOYMENT} not found on {client.api_url}: run "
                "`prefect deploy --all` first"
            ) from exc
        for existing in client.read_automations_by_name(AUTOMATION_NAME):
            client.delete_automation(existing.id)
        return client.create_automation(deadline_automation(deployment.id, document.id, window))


def main(
    block: Annotated[
        str,
        typer.Option(
            envvar="PHASE4_DEADLINE_BLOCK",
            help="Notification block BLOCK_TYPE/NAME, e.g. slack-webhook/phase4-alerts; "
            f"'{NO_BLOCK}' creates no automation.",
        ),
    ],
    minutes: Annotated[
        float,
        typer.Option(
            envvar="PHASE4_DEADLINE_MINUTES",
            help="Window from a nightly run's start to its deadline.",
        ),
    ] = DEFAULT_WINDOW_MINUTES,
) -> None:
    """Create (or replace) the automation that notifies when the nightly run misses 01:00."""
    if block.strip().lower() == NO_BLOCK:
        typer.echo(f"PHASE4_DEADLINE_BLOCK={NO_BLOCK}: no deadline automation")
        return
    try:
        if minutes <= 0:
            raise ValueError(f"PHASE4_DEADLINE_MINUTES={minutes:g} must be positive")
        automation_id = create_deadline_automation(block, timedelta(minutes=minutes))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    api = os.environ.get("PREFECT_API_URL", "the configured Prefect API")
    typer.echo(
        f"automation {AUTOMATION_NAME} ({automation_id}) on {api}: notify {block} when a "
        f"{NIGHTLY_DEPLOYMENT} run is not Completed {minutes:g} min after it started"
    )


if __name__ == "__main__":
    typer.run(main)
