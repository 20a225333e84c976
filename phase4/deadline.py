"""The 01:00 New York deadline: a Prefect automation that notifies when a nightly run is late.

A *proactive* trigger: once a worker picks a nightly run up (Pending: a run that crashes before
it starts counts too) or it is Late, it expects the run's `prefect.flow-run.Completed` within the
window (120 min: 01:00 for the 23:00 run), else the server notifies through the user's block.
prefect.yaml triggers can only run deployments, so `make deploy-local` and `make deploy` run
`python -m phase4.deadline` after `prefect deploy --all`. An unchanged automation is left alone
(the runs it watches stay watched), a changed one updated in place; `none` removes it.
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
# No state in the text: it would be the run's state when the watch began, not when it fires.
BODY = (
    "Phase 4 nightly run {{ flow_run.name }} has not completed within {minutes} min of a worker"
    " picking it up, or of its going Late (the 23:00 run's deadline is 01:00 America/New_York)."
    " A run that never started keeps Prefect's generated name. Parameters:"
    " {{ flow_run.parameters }}. Flow run id: {{ flow_run.id }}."
)
WATCH_FROM = {f"prefect.flow-run.{state}" for state in ("Pending", "Submitting", "Running", "Late")}


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
            after=WATCH_FROM,
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
    """Create or update the deadline automation on the current Prefect API; its id. A bad
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
        wanted = deadline_automation(deployment.id, document.id, window)
        existing = client.read_automations_by_name(AUTOMATION_NAME)
        if not existing:
            return client.create_automation(wanted)
        kept, *extra = existing
        for duplicate in extra:
            client.delete_automation(duplicate.id)
        fields = set(AutomationCore.model_fields)  # not the server's own (id, updated)
        if kept.model_dump(include=fields) != wanted.model_dump(include=fields):
            client.update_automation(kept.id, wanted)
        return kept.id


def remove_deadline_automation() -> int:
    """`none`: an earlier deploy's automation removed; how many there were."""
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(AUTOMATION_NAME)
        for automation in existing:
            client.delete_automation(automation.id)
    return len(existing)


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
    """Create (or update) the automation that notifies when the nightly run misses 01:00."""
    if block.strip().lower() == NO_BLOCK:
        removed = f" ({AUTOMATION_NAME} removed)" if remove_deadline_automation() else ""
        typer.echo(f"PHASE4_DEADLINE_BLOCK={NO_BLOCK}: no deadline automation{removed}")
        return
    try:
        if not 0 < minutes <= 24 * 60:  # NaN and inf fail too
            raise ValueError(f"PHASE4_DEADLINE_MINUTES={minutes:g}: expected 0 to 1440 minutes")
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
