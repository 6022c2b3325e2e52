"""What the batch scripts of ``examples/slurm`` ask the toolkit before they start the ranks.

    python -m microaunet_cli.cli.slurm port                  # a free rendezvous port for the job
    python -m microaunet_cli.cli.slurm last COMMAND ARGS...  # the last.pt that COMMAND ARGS resumes

The batch script runs on the allocation's first node, where the ranks meet (``MASTER_ADDR``), so the
port it finds free there is the one rank 0 listens on. The run folder is the one the command itself
would use: its settings are resolved as the command resolves them (``--config``, ``--set
output.runs_dir=...``, ``--name``, ``MICROAUNET_*`` variables), so a resubmitted job resumes the run it
left, wherever the arguments put it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from microaunet_cli.errors import ConfigError, MicroAUNetError

# Below Linux's ephemeral range (32768-60999), whose ports the kernel hands out to outgoing connections.
PORTS = range(20000, 32768)


def port_is_free(port: int) -> bool:
    """Whether a TCP socket can listen on ``port`` on every interface of this node now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("", port))
        except OSError:
            return False
    return True


def rendezvous_port(job_id: str, is_free: Callable[[int], bool] = port_is_free) -> int:
    """A free port for the job's rendezvous: the first free one from a start hashed from the job id.

    Hashed, so the jobs sharing a node start far apart in the range (not at consecutive ports, nor at
    the same one for job ids 20000 apart); probed, so a port another job or program already holds is
    skipped; the same start for a requeued job, which usually gets its own port back."""
    digest = hashlib.blake2b(str(job_id).encode(), digest_size=8).digest()
    start = int.from_bytes(digest, "big") % len(PORTS)
    for i in range(len(PORTS)):
        port = PORTS[(start + i) % len(PORTS)]
        if is_free(port):
            return port
    raise ConfigError(
        f"no free TCP port in {PORTS.start}-{PORTS.stop - 1} on this node; export MASTER_PORT=PORT "
        f"(a port free on the first node) before submitting"
    )


def resolved_settings(command: str, args: list[str]) -> dict:
    """The settings ``microaunet COMMAND ARGS`` would run with (its ``--print-config``)."""
    import yaml

    from microaunet_cli.cli.app import app

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:  # the command prints a refusal (an unknown option, a bad value) on stderr itself
            app([command, *args, "--print-config"], prog_name="microaunet")
        except SystemExit as exc:
            if exc.code:
                raise ConfigError(
                    f"`microaunet {command}` refused its arguments (status {exc.code})"
                ) from None
    return yaml.safe_load(out.getvalue()) or {}


def last_checkpoint(command: str, args: list[str]) -> Path:
    """The ``last.pt`` that ``microaunet COMMAND ARGS --resume`` would continue from."""
    from microaunet_cli.config import RunSettings
    from microaunet_cli.training.runner import run_folder_for

    settings = RunSettings.model_validate(resolved_settings(command, args))
    training = "distilled" if command == "distill" else "supervised"
    return run_folder_for(settings, training).last


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["port"]:
            print(rendezvous_port(os.environ.get("SLURM_JOB_ID", str(os.getpid()))))
            return 0
        if argv[:1] == ["last"] and len(argv) > 1:
            print(last_checkpoint(argv[1], argv[2:]))
            return 0
    except MicroAUNetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
