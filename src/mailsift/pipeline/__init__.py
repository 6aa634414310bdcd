"""Stage scheduling, time budgets, error isolation and the per-recipient verdicts."""

from mailsift.pipeline.runner import (
    Authenticate,
    Pipeline,
    PrepareEnvelope,
    message_facts,
    policy_hash,
)

__all__ = ["Authenticate", "Pipeline", "PrepareEnvelope", "message_facts", "policy_hash"]
