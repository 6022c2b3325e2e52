"""The SLURM scripts of examples/slurm against a real Slurm on this machine.

A module fixture starts ``munged``, ``slurmctld`` and ``slurmd`` from a minimal slurm.conf in a temporary
folder (one node: this machine and its CPUs, proctrack/linuxproc, task/none) and stops them afterwards.
The tests submit the scripts as a user would, on the synthetic set, and deliver the signals Slurm sends:
the time-limit warning (``--signal=B:USR1@T`` reaches the batch shell exactly as ``scancel --signal=USR1
--batch`` does; sent by the test once training is under way, so the moment is certain and no minute-long
time limit is waited for) and pre-emption by ``scancel`` (SIGTERM). They need root and Debian's
slurmctld, slurmd, slurm-client and munge (``.ci/run`` installs them) and skip, saying which, without.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from microaunet_cli.checkpoints import load_checkpoint
from microaunet_cli.data import PrepareSettings, prepare_dataset
from microaunet_cli.devices import pick_device
from microaunet_cli.errors import ConfigError
from microaunet_cli.training.runtime import launch_ranks

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "examples" / "slurm"
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "srun", "sinfo")
# Small enough to take seconds, long enough (about 0.2 s per epoch) that a signal sent after two epochs
# lands in the middle of the run.
EPOCHS = 20
EPOCHS_TWO_RANKS = 12
TRAIN_ARGS = ("--batch-size", "4", "--deterministic", "--set", "train.num_threads=1")
FINISHED = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
}


# ---- launcher environment (no Slurm needed) ---------------------------------------------------------
def test_srun_task_variables_stand_for_torchrun_ones():
    srun_task = {
        "SLURM_STEP_ID": "0",
        "SLURM_PROCID": "3",
        "SLURM_LOCALID": "1",
        "SLURM_NTASKS": "4",
        "MASTER_ADDR": "node1",
        "MASTER_PORT": "29500",
    }
    assert launch_ranks(srun_task) == (3, 4, 1)
    torchrun = {**srun_task, "RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "2"}
    assert launch_ranks(torchrun) == (5, 8, 2)  # `srun torchrun ...`: torchrun's own numbering wins
    batch_shell = {"SLURM_PROCID": "0", "SLURM_NTASKS": "4"}  # no step: a process started by the script
    assert launch_ranks(batch_shell) == (0, 1, 0)
    assert launch_ranks({}) == (0, 1, 0)


def test_srun_tasks_without_a_rendezvous_address_are_told_what_to_export():
    with pytest.raises(ConfigError, match="MASTER_ADDR and MASTER_PORT"):
        launch_ranks({"SLURM_STEP_ID": "0", "SLURM_PROCID": "0", "SLURM_NTASKS": "2"})


@pytest.mark.parametrize(("visible", "local_rank", "index"), [(4, 3, 3), (1, 3, 0), (2, 3, 1)])
def test_each_task_takes_its_gpu_among_those_it_sees(monkeypatch, visible, local_rank, index):
    """All the node's GPUs visible (torchrun, plain srun): the local rank's; one bound to each task
    (--gpus-per-task, --gpu-bind): that one."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: visible)
    assert pick_device("auto", local_rank) == torch.device("cuda", index)
    assert pick_device("cuda", local_rank) == torch.device("cuda", index)


# ---- a Slurm on localhost ---------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_environment() -> dict[str, str]:
    """This interpreter and this checkout for the jobs; nothing from an enclosing Slurm job, launcher or
    MICROAUNET_* settings."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLURM_", "MICROAUNET_", "MASTER_"))
        and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    }
    bindir = str(Path(sys.executable).parent)
    return {
        **keep,
        "PATH": f"{bindir}{os.pathsep}{keep.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), keep.get("PYTHONPATH")) if p),
        "PYTHON": sys.executable,
        "OMP_NUM_THREADS": "1",
    }


class SlurmCluster:
    """munged + slurmctld + slurmd of one node, private to the tests (own key, socket, ports, folders)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.node = socket.gethostname().split(".")[0]  # slurmctld accepts only its own host name
        self.env = _clean_environment()
        self.env["SLURM_CONF"] = str(root / "slurm.conf")
        self.daemons: list[subprocess.Popen] = []

    # -- daemons --
    def write_config(self) -> None:
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir()
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o400)
        r = self.root
        (r / "slurm.conf").write_text(f"""\
ClusterName=tests
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire: also how long a requeued job waits before it may start again (default 120 s).
AuthInfo=socket={r}/munge.socket,cred_expire=10
CredType=cred/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
# Look at pending jobs every second (default 60 s): a requeued job starts as soon as it may.
SchedulerParameters=sched_interval=1
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
# Requeue allowed; finished jobs stay visible to `scontrol show job` for 5 minutes (no slurmdbd here).
JobRequeue=1
MinJobAge=300
SlurmctldTimeout=5
SlurmdTimeout=30
# Seconds between SIGTERM and SIGKILL: the time the ranks have to write last.pt when cancelled.
KillWait=10
ReturnToService=2
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN
PartitionName=tests Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")

    def start(self) -> None:
        self.write_config()
        r = self.root
        self._daemon(
            "munged",
            "-F",
            "--force",
            f"--key-file={r}/munge.key",
            f"--socket={r}/munge.socket",
            f"--pid-file={r}/munged.pid",
            f"--log-file={r}/log/munged.log",
            f"--seed-file={r}/munge.seed",
        )
        self._wait(lambda: (r / "munge.socket").exists(), 10, "munged's socket")
        self._daemon("slurmctld", "-D", "-i")
        self._daemon("slurmd", "-D", "-N", self.node)

        def idle() -> bool:
            return self.run("sinfo", "-h", "-n", self.node, "-o", "%t", check=False).strip() == "idle"

        self._wait(idle, 30, f"node {self.node} idle in sinfo")

    def _daemon(self, program: str, *args: str) -> None:
        with open(self.root / "log" / f"{program}.out", "wb") as log:  # the daemon keeps its own copy
            self.daemons.append(
                subprocess.Popen([program, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT)
            )

    def stop(self) -> None:
        """Cancel what is left, wait for it to end, then stop the daemons this fixture started (by pid)."""
        if self.daemons and self.daemons[-1].poll() is None:
            self.run("scancel", "--user=root", check=False)
            deadline = time.monotonic() + 30
            while self.run("squeue", "-h", check=False).strip() and time.monotonic() < deadline:
                time.sleep(0.5)
        for proc in reversed(self.daemons):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        parts = []
        for path in sorted((self.root / "log").iterdir()):
            parts.append(f"--- {path.name} (end)\n" + path.read_text(errors="replace")[-2000:])
        return "\n".join(parts)

    # -- clients --
    def run(self, *cmd: str, check: bool = True) -> str:
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr}\n{self.logs()}")
        return done.stdout

    def sbatch(
        self,
        script: str,
        workdir: Path,
        out: Path,
        *options: str,
        args: tuple[str, ...] = (),
        **variables: str,
    ) -> str:
        cmd = [
            "sbatch",
            "--parsable",
            f"--chdir={workdir}",
            f"--output={out}",
            *options,
            str(SCRIPTS / script),
            *args,
        ]
        env = {**self.env, **variables}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        return dict(re.findall(r"(\w+)=(\S*)", self.run("scontrol", "-o", "show", "job", job_id)))

    def _wait(
        self, ready: Callable[[], bool], timeout: float, what: str, detail: Callable[[], str] = str
    ) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what}\n{detail()}\n{self.logs()}"
                )
            time.sleep(0.25)

    def wait_job(
        self, job_id: str, ready: Callable[[dict[str, str]], bool], timeout: float, what: str, out: Path
    ) -> dict[str, str]:
        def detail() -> str:
            return f"{_brief(self.job(job_id))}\n--- job output\n{out.read_text() if out.exists() else ''}"

        self._wait(lambda: ready(self.job(job_id)), timeout, f"job {job_id}: {what}", detail)
        return self.job(job_id)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> Iterator[SlurmCluster]:
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing:
        pytest.skip(
            f"Slurm is not installed ({', '.join(missing)} missing): apt-get install slurmctld "
            f"slurmd slurm-client munge, as .ci/run does"
        )
    if os.geteuid() != 0:
        pytest.skip("the Slurm tests start their own slurmctld and slurmd, which must run as root")
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("slurm-data") / "synthetic"
    prepare_dataset(PrepareSettings(dataset="synthetic", out=out, size=32, synthetic_count=24, workers=1))
    return out


def _train_args(prepared: Path, epochs: int) -> tuple[str, ...]:
    return ("--data-dir", str(prepared), "--epochs", str(epochs), *TRAIN_ARGS)


def _uninterrupted(slurm: SlurmCluster, workdir: Path, prepared: Path, epochs: int, processes: int) -> Path:
    """The same training without Slurm or signals: one process, or torchrun's on this machine."""
    launcher = (
        [sys.executable, "-m", "microaunet_cli"]
        if processes == 1
        else [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(processes),
            "-m",
            "microaunet_cli",
        ]
    )
    cmd = [
        *launcher,
        "train-teacher",
        "--dataset",
        "synthetic",
        "--name",
        "straight",
        *_train_args(prepared, epochs),
    ]
    done = subprocess.run(
        cmd, cwd=workdir, env=slurm.env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir / "runs" / "straight"


@pytest.fixture(scope="module")
def straight(slurm, prepared, tmp_path_factory) -> Path:
    return _uninterrupted(slurm, tmp_path_factory.mktemp("straight"), prepared, EPOCHS, 1)


def _epochs_logged(run: Path) -> int:
    path = run / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _wait_mid_run(slurm: SlurmCluster, job_id: str, run: Path, out: Path) -> None:
    """Two epochs done: the run is under way and has most of its epochs still ahead."""
    job = slurm.wait_job(
        job_id,
        lambda job: _epochs_logged(run) >= 2 or job["JobState"] in FINISHED,
        120,
        "two epochs logged",
        out,
    )
    assert job["JobState"] == "RUNNING", f"the job ended before the test could signal it\n{out.read_text()}"


def _wait_requeued(slurm: SlurmCluster, job_id: str, out: Path) -> None:
    job = slurm.wait_job(
        job_id,
        lambda job: int(job["Restarts"]) >= 1 or job["JobState"] in FINISHED,
        60,
        "requeued by its script",
        out,
    )
    assert int(job["Restarts"]) >= 1, (
        f"job {job_id} ended without being requeued: {_brief(job)}\n{out.read_text()}"
    )


def _brief(job: dict[str, str]) -> str:
    return " ".join(f"{k}={job.get(k)}" for k in ("JobState", "Reason", "ExitCode", "Restarts"))


def _stop_saves(text: str) -> list[tuple[int, int]]:
    """(epoch, batch) of every save at a stop signal the job output reports."""
    found = re.findall(r"stop signal received: saved \S+ at epoch (\d+), batch (\d+)", text)
    return [(int(e), int(b)) for e, b in found]


def assert_same_result(run: Path, reference: Path, epochs: int) -> None:
    """All epochs done, and the same weights, per-epoch metrics and test scores as the reference."""
    summary = json.loads((run / "summary.json").read_text())
    expected = json.loads((reference / "summary.json").read_text())
    assert (summary["status"], summary["epochs_done"]) == ("completed", epochs)
    assert summary["test"] == expected["test"]
    for key in ("best_epoch", "best_val_mdice"):
        assert summary[key] == expected[key], key

    def rows(path: Path) -> list[dict]:  # throughput is timing, not result
        return [
            {k: v for k, v in json.loads(line).items() if not k.endswith("per_s")}
            for line in (path / "metrics.jsonl").read_text().splitlines()
        ]

    assert rows(run) == rows(reference)
    got = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    want = load_checkpoint(reference / "checkpoints" / "last.pt")["model"]
    assert got.keys() == want.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key


# ---- the scripts under Slurm ------------------------------------------------------------------------
@pytest.mark.slurm
def test_time_limit_warning_checkpoints_requeues_and_resumes_to_the_same_result(
    slurm, prepared, straight, tmp_path
):
    out, run = tmp_path / "job.out", tmp_path / "runs" / "warned"
    job_id = slurm.sbatch(
        "train_1node.sbatch",
        tmp_path,
        out,
        "--cpus-per-task=1",
        "--time=10",
        args=_train_args(prepared, EPOCHS),
        DATASET="synthetic",
        NAME="warned",
    )
    _wait_mid_run(slurm, job_id, run, out)
    slurm.run("scancel", "--signal=USR1", "--batch", job_id)  # what Slurm sends at --signal=B:USR1@T
    _wait_requeued(slurm, job_id, out)
    first = out.read_text()
    saves = _stop_saves(first)
    assert len(saves) == 1 and saves[0][0] < EPOCHS and saves[0][1] >= 1, first  # mid-epoch, at the signal
    assert "received SIGUSR1" in first and "step ended with status 138" in first, first

    job = slurm.wait_job(job_id, lambda job: job["JobState"] in FINISHED, 120, "resumed run finished", out)
    text = out.read_text()
    assert (job["JobState"], job["ExitCode"], int(job["Restarts"])) == ("COMPLETED", "0:0", 1), text
    assert f"resumed at epoch {saves[0][0]}, batch {saves[0][1]}" in text, text
    assert_same_result(run, straight, EPOCHS)


@pytest.mark.slurm
def test_scancel_sigterm_checkpoints_and_the_resubmitted_script_resumes(slurm, prepared, straight, tmp_path):
    out, run = tmp_path / "job.out", tmp_path / "runs" / "cancelled"
    submit = ("train_1node.sbatch", tmp_path, out, "--cpus-per-task=1", "--time=10")
    job_id = slurm.sbatch(*submit, args=_train_args(prepared, EPOCHS), DATASET="synthetic", NAME="cancelled")
    _wait_mid_run(slurm, job_id, run, out)
    slurm.run("scancel", job_id)  # SIGTERM to every process of the job, SIGKILL KillWait seconds later
    job = slurm.wait_job(job_id, lambda job: job["JobState"] in FINISHED, 60, "cancelled", out)
    text = out.read_text()
    assert (job["JobState"], int(job["Restarts"])) == ("CANCELLED", 0), text  # cancelled means no requeue
    saves = _stop_saves(text)
    assert "received SIGTERM" in text and len(saves) == 1, text
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert (last["epoch"], last["step_in_epoch"]) == saves[0] and saves[0][1] >= 1, text

    again = slurm.sbatch(*submit, args=_train_args(prepared, EPOCHS), DATASET="synthetic", NAME="cancelled")
    job = slurm.wait_job(again, lambda job: job["JobState"] in FINISHED, 120, "resubmitted run finished", out)
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), out.read_text()
    assert f"resumed at epoch {saves[0][0]}, batch {saves[0][1]}" in out.read_text()
    assert_same_result(run, straight, EPOCHS)


@pytest.mark.slurm
def test_two_tasks_meet_every_rank_checkpoints_and_the_requeued_job_resumes(slurm, prepared, tmp_path):
    """The multi-node script with two tasks on this one node standing in for two nodes (gloo, CPU)."""
    (tmp_path / "torchrun").mkdir()
    reference = _uninterrupted(slurm, tmp_path / "torchrun", prepared, EPOCHS_TWO_RANKS, 2)
    out, run = tmp_path / "job.out", tmp_path / "runs" / "two"
    job_id = slurm.sbatch(
        "train_multinode.sbatch",
        tmp_path,
        out,
        "--nodes=1",
        "--ntasks-per-node=2",
        "--cpus-per-task=1",
        "--time=10",
        args=_train_args(prepared, EPOCHS_TWO_RANKS),
        DATASET="synthetic",
        NAME="two",
    )
    _wait_mid_run(slurm, job_id, run, out)
    slurm.run("scancel", "--signal=USR1", "--batch", job_id)
    _wait_requeued(slurm, job_id, out)
    first = out.read_text()
    assert f"rendezvous {slurm.node}:" in first and "rank 1 of 2 (gloo)" in first, first
    assert first.count("received SIGUSR1") == 2, first  # the warning reached both ranks
    saves = _stop_saves(first)
    assert len(saves) == 2 and len(set(saves)) == 1 and saves[0][1] >= 1, first  # both stopped at one batch

    job = slurm.wait_job(job_id, lambda job: job["JobState"] in FINISHED, 120, "resumed run finished", out)
    outcome = (job["JobState"], job["ExitCode"], int(job["Restarts"]))
    assert outcome == ("COMPLETED", "0:0", 1), out.read_text()
    assert json.loads((run / "summary.json").read_text())["world_size"] == 2
    assert_same_result(run, reference, EPOCHS_TWO_RANKS)


# ---- the batch scripts' set-up, run by bash without Slurm ---------------------------------------------
def _script_setup(script: str, args: list[str], **variables: str) -> dict[str, str]:
    """Run a batch script up to the line that starts the ranks, with ``args`` as its arguments, and
    return the rendezvous and resume decisions it took."""
    lines = (SCRIPTS / script).read_text().splitlines()
    setup = "\n".join(lines[: next(i for i, line in enumerate(lines) if line.startswith("srun "))])
    probe = setup + '\necho "MASTER_PORT=$MASTER_PORT"\necho "RESUME=${RESUME[*]:-}"\n'
    env = {
        **_clean_environment(),
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NODELIST": "localhost",
        "MASTER_ADDR": "127.0.0.1",
        **variables,
    }
    done = subprocess.run(
        ["bash", "-c", probe, script, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line and " " not in line)


@pytest.mark.slow
@pytest.mark.parametrize("script", ["train_1node.sbatch", "train_multinode.sbatch"])
def test_the_rendezvous_port_is_free_on_the_node_even_when_its_first_choice_is_taken(script, tmp_path):
    """Two jobs on one node, the second starting where the first listens: the second gets another,
    free port (job ids 20000 apart gave the very same one)."""
    first = int(_script_setup(script, [], SLURM_JOB_ID="4242")["MASTER_PORT"])
    assert 1024 < first < 65536
    with socket.socket() as taken:
        taken.bind(("", first))
        taken.listen()
        second = int(_script_setup(script, [], SLURM_JOB_ID="4242")["MASTER_PORT"])
        assert second != first
    assert _script_setup(script, [], MASTER_PORT="31234")["MASTER_PORT"] == "31234"  # given: kept


def test_rendezvous_ports_of_jobs_20000_apart_differ_and_skip_ports_in_use():
    from microaunet_cli.cli.slurm import PORTS, rendezvous_port

    ports = {rendezvous_port(str(job)) for job in (5, 20005, 40005)}
    assert len(ports) == 3 and all(p in PORTS for p in ports)
    busy = {rendezvous_port("7"), rendezvous_port("7") + 1}
    assert rendezvous_port("7", lambda p: p not in busy) == max(busy) + 1
    with pytest.raises(ConfigError, match="MASTER_PORT"):
        rendezvous_port("7", lambda p: False)


def test_the_checkpoint_to_resume_is_where_the_command_would_write(tmp_path, monkeypatch):
    from microaunet_cli.cli.slurm import last_checkpoint

    runs = tmp_path / "scratch-runs"
    args = ["--dataset", "synthetic", "--name", "mine", "--set", f"output.runs_dir={runs}"]
    assert last_checkpoint("train-teacher", args) == runs / "mine" / "checkpoints" / "last.pt"
    assert (
        last_checkpoint("train-teacher", [*args, "--name", "other"])
        == runs / "other" / "checkpoints" / "last.pt"
    )
    monkeypatch.setenv("MICROAUNET_OUTPUT__RUNS_DIR", str(tmp_path / "env-runs"))
    default = last_checkpoint("distill", ["--dataset", "synthetic", "--model", "microaunet_rt"])
    assert default == tmp_path / "env-runs" / "synthetic-microaunet_rt-distill" / "checkpoints" / "last.pt"
    with pytest.raises(ConfigError, match="refused its arguments"):
        last_checkpoint("train-teacher", ["--no-such-option"])


@pytest.mark.slow
@pytest.mark.parametrize("script", ["train_1node.sbatch", "train_multinode.sbatch"])
def test_a_resubmitted_job_resumes_the_run_folder_its_arguments_name(script, tmp_path):
    """`--set output.runs_dir=...` among the script's arguments: the last.pt there is resumed."""
    runs = tmp_path / "scratch-runs"
    (runs / "mine" / "checkpoints").mkdir(parents=True)
    args = ["--epochs", "3", "--set", f"output.runs_dir={runs}"]
    variables = {"DATASET": "synthetic", "NAME": "mine", "MASTER_PORT": "31234"}
    assert _script_setup(script, args, **variables)["RESUME"] == ""  # nothing to resume yet
    (runs / "mine" / "checkpoints" / "last.pt").write_bytes(b"")
    assert _script_setup(script, args, **variables)["RESUME"] == "--resume"
