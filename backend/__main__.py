import os
import sys

# The engine's thread issues a thousand small parallel ops per step while gRPC, the event
# loop and the guardrails share the same few cores. OpenMP's default lets idle workers spin
# for 300,000 rounds between ops; beside those other threads that spinning took the cores
# from the work (seen: 8 s per token instead of 0.25 s on a busy 2-core machine). Workers
# that sleep at once (OMP_WAIT_POLICY=PASSIVE) pay a wake-up per op instead: 252 ms per
# token against 206 ms with a short spin of 20,000 rounds, which stays hot across the ops
# of one step and sleeps soon after it (1 and 8 streams through the server, same
# machine, same hour). Must be set before torch loads OpenMP; an explicit OMP_WAIT_POLICY
# or GOMP_SPINCOUNT in the environment wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "20000")

from backend.cli import main  # noqa: E402

sys.exit(main())
