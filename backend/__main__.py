import os
import sys

# The engine's thread issues a thousand small parallel ops per step while gRPC, the event
# loop and the guardrails share the same few cores. OpenMP's default lets idle workers spin
# between ops; beside those other threads that spinning took the cores from the work
# (seen: 8 s per token instead of 0.25 s on a busy 2-core machine). Workers that sleep at
# once cost a wake-up per op and no more. Must be set before torch loads OpenMP; an
# explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from backend.cli import main  # noqa: E402

sys.exit(main())
