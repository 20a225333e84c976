"""Typed access to what a flow run returned, for tests that run the flow with return_state."""

from __future__ import annotations

from typing import Any

from prefect.states import State

from quality.success import RunFailed, RunReport


def report_of(state: State[Any], *, raise_on_failure: bool = True) -> RunReport:
    """The run's RunReport; a failed run still returns one (raise_on_failure=False)."""
    report = state.result(raise_on_failure=raise_on_failure)
    report = report.outcome if isinstance(report, RunFailed) else report
    assert isinstance(report, RunReport), f"the run returned {type(report).__name__}: {report}"
    return report
