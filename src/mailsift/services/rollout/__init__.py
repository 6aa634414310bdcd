"""Safe rollout use cases (stage, check, promote, withdraw, retire, roll back; breaker trips,
incidents and incident release; policy changes through the gate) and the run-time watcher of
``mailsift serve`` (``services.rollout.watch``). ``RolloutService`` is the entry point."""

from mailsift.services.rollout.service import RolloutService

__all__ = ["RolloutService"]
