"""Guardrails in the serving path: input screening, retrieved-chunk checks and output
filtering, decided by a YAML policy (see guard.py for the stages)."""

from backend.guardrails.guard import ChunkDrop, Guard, InputScreen, OutputGuard, Verdict
from backend.guardrails.policy import DEFAULT_POLICY, Policy, PolicyError, load_policy

__all__ = [
    "DEFAULT_POLICY",
    "ChunkDrop",
    "Guard",
    "InputScreen",
    "OutputGuard",
    "Policy",
    "PolicyError",
    "Verdict",
    "load_policy",
]
