"""Example workflows that call the allow-policies-batch activity by name, as
a team writing its workflows in Python would; `make test-temporal` runs
them against a real Temporal server (tests/temporal/test_temporal.py).

The activity runs in the Rust worker (`task-host-temporal`) on its own task
queue; these workflows never see its config or token, only the task's
input and result documents."""

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

ACTIVITY = "allow_policies_batch"


def retry_policy(maximum_attempts: int) -> RetryPolicy:
    # The worker marks what must not be repeated as non-retryable, and gives
    # the API's Retry-After as the next retry's delay.
    return RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=maximum_attempts,
    )


def describe_failure(error: ActivityError) -> dict:
    """What a workflow can read from the activity's failure."""
    cause = error.cause
    retry_state = error.retry_state.name if error.retry_state is not None else None
    described = {"activity_error": True, "retry_state": retry_state}
    if isinstance(cause, ApplicationError):
        described.update(
            type=cause.type,
            message=cause.message,
            non_retryable=cause.non_retryable,
            details=list(cause.details),
        )
    elif isinstance(cause, CancelledError):
        described.update(cancelled=True, details=list(cause.details))
    else:
        described.update(other=type(cause).__name__, message=str(cause))
    return described


@workflow.defn
class ApplyBatch:
    """Runs one batch; returns the result document, or what failed."""

    @workflow.run
    async def run(self, task_queue: str, batch: dict, maximum_attempts: int) -> dict:
        try:
            result = await workflow.execute_activity(
                ACTIVITY,
                batch,
                task_queue=task_queue,
                start_to_close_timeout=timedelta(seconds=60),
                heartbeat_timeout=timedelta(seconds=5),
                retry_policy=retry_policy(maximum_attempts),
            )
            return {"result": result}
        except ActivityError as error:
            return {"failure": describe_failure(error)}


@workflow.defn
class CancelBatch:
    """Starts a batch, cancels it once it runs, and reports what came back."""

    @workflow.run
    async def run(self, task_queue: str, batch: dict) -> dict:
        handle = workflow.start_activity(
            ACTIVITY,
            batch,
            task_queue=task_queue,
            start_to_close_timeout=timedelta(seconds=60),
            # Cancellation reaches an activity in the answer to a heartbeat.
            heartbeat_timeout=timedelta(seconds=2),
            retry_policy=retry_policy(1),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await asyncio.sleep(1.5)
        started = workflow.now()
        handle.cancel()
        try:
            result = await handle
            return {"result": result}
        except ActivityError as error:
            waited = (workflow.now() - started).total_seconds()
            return {"failure": describe_failure(error), "waited_s": waited}
