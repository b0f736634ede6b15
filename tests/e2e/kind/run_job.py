"""Run a command beside the model store of a cluster, as tests/e2e's `--stack-run` prefix:

    python -m tests.e2e.kind.run_job --namespace agi-credit --env MIN_AUC=0 -- \\
        agi-credit train --synthetic

The command runs in a Job made from the training CronJob's template (its image, its store
mount read-write, its security context); its stdout comes back byte for byte on stdout, its
stderr on stderr, and its exit status is this one's (1 when the Job failed).
"""

from __future__ import annotations

import argparse
import sys

from tests.e2e.kind.cluster import Cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--timeout", type=float, default=900, help="seconds (default 900)")
    parser.add_argument("command", nargs="+", help="the command and its arguments, after --")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    cluster = Cluster(args.namespace, args.context)
    status, stdout, stderr = cluster.run(args.command, env, timeout=args.timeout)
    sys.stderr.write(stderr)
    sys.stdout.buffer.write(stdout)
    return status


if __name__ == "__main__":
    sys.exit(main())
