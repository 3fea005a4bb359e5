"""Live progress and Ctrl-C as a user at a terminal sees them.

The solve runs in a pseudo-terminal (python's ``pty``, 80 columns), on a generated
300-slot hall with an inlet row on every slot: HiGHS takes seconds per step there and
went 5-10 s without calling back, which used to freeze the progress line and delay
Ctrl-C. The test reads what the terminal would show, with the time each piece came.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import xarray as xr
from helpers import generated_hall, run, write_study

from optimizer.errors import EXIT_INTERRUPTED

ROOT = Path(__file__).resolve().parents[1]
RACKOPT = str(Path(sys.executable).parent / "rackopt")
HARD = ROOT / "tests" / "data" / "hard-knapsack.yaml"
_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@pytest.fixture(scope="module")
def thermal_hall(tmp_path_factory) -> Path:
    """hall-300-thermal of docs/benchmarks.md: no layout proven optimal in test time."""
    path = tmp_path_factory.mktemp("thermal") / "hall-300-thermal.yaml"
    return generated_hall(path, "--rows", "10", "--slots", "30", "--supply-temp-c", "23")


class Terminal:
    """A command in an 80 x 24 pseudo-terminal; ``read`` collects (seconds, text) pieces."""

    def __init__(self, *args: str) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the command, on the terminal
            os.environ.update(COLUMNS="80", LINES="24")
            os.execv(RACKOPT, [RACKOPT, *args])
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.started = time.monotonic()
        self.pieces: list[tuple[float, str]] = []
        self.exit_code: int | None = None

    def read(self, until: float) -> bool:
        """Collect output until ``until`` seconds after the start; False once it ended."""
        while (left := until - (time.monotonic() - self.started)) > 0:
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.05))
            if ready:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    data = b""
                if not data:
                    _, status = os.waitpid(self.pid, 0)
                    self.exit_code = os.waitstatus_to_exitcode(status)
                    return False
                self.pieces.append((time.monotonic() - self.started, data.decode()))
        return True

    def interrupt(self) -> float:
        """Ctrl-C as a terminal sends it (to the foreground process group); its time."""
        os.killpg(self.pid, signal.SIGINT)
        return time.monotonic() - self.started

    def text(self) -> str:
        return "".join(text for _, text in self.pieces)


def _screen_lines(text: str) -> list[str]:
    """Every line as drawn: escape sequences removed, split at carriage returns too (the
    summary on stdout is not checked: it is ordinary output, free to wrap)."""
    return [line for line in re.split(r"[\r\n]", _ESCAPE.sub("", text)) if line]


def test_progress_redraws_every_second_fits_80_columns_and_ctrl_c_keeps_the_layout(
    thermal_hall, tmp_path
):
    out = tmp_path / "thermal.nc"
    terminal = Terminal("solve", str(thermal_hall), "-o", str(out), "--time-limit", "60")
    # Wait (however long start-up takes on a busy machine) until an incumbent is shown,
    # then watch the line for 4 s.
    while not re.search(r"best [\d,]+ GPUs", terminal.text()):
        assert terminal.read(time.monotonic() - terminal.started + 1), terminal.text()
        assert time.monotonic() - terminal.started < 120, "no incumbent shown"
    watched_from = time.monotonic() - terminal.started
    assert terminal.read(watched_from + 4)
    redraws = [t for t, text in terminal.pieces if t >= watched_from and "\r" in text]
    assert len(redraws) >= 4, terminal.pieces
    gaps = [b - a for a, b in zip([watched_from, *redraws], redraws, strict=False)]
    assert max(gaps) <= 1.0, gaps
    assert "GPUs" in terminal.pieces[-1][1]

    pressed = terminal.interrupt()
    time.sleep(0.1)
    terminal.interrupt()  # a second Ctrl-C at once must not lose the layout
    while terminal.read(time.monotonic() - terminal.started + 1):
        assert time.monotonic() - terminal.started < pressed + 60, "Ctrl-C did not end it"
    # Acting means: the line says it is stopping, or the solve has already ended (the
    # progress line is closed) when HiGHS stopped at once.
    acted = [t for t, text in terminal.pieces if t > pressed and re.search("stopping|\n", text)]
    assert acted and acted[0] - pressed <= 1.0, terminal.pieces[-5:]
    assert terminal.exit_code == EXIT_INTERRUPTED, terminal.text()[-500:]
    assert "the best layout found so far was written" in terminal.text()
    assert "Traceback" not in terminal.text()
    status = [line for line in _screen_lines(terminal.text()) if line.startswith("primary")]
    assert status and all(len(line) < 80 for line in status), status
    with xr.open_dataset(out) as ds:
        assert ds.attrs["status"] == "interrupted"
        assert ds.attrs["objective"] == int(ds["total_gpus"])
    assert run("verify", thermal_hall, out).exit_code == 0


def test_progress_is_plain_log_lines_when_stderr_is_no_terminal_and_ctrl_c_twice_keeps_it(
    tmp_path,
):
    out = tmp_path / "hard.nc"
    solver = subprocess.Popen(
        [RACKOPT, "solve", str(HARD), "-o", str(out), "--gap", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert solver.stderr is not None
    lines = []
    for line in solver.stderr:  # a plain line every 5 s: wait for two
        lines.append(line)
        if len(lines) == 2:
            break
    solver.send_signal(signal.SIGINT)
    time.sleep(0.05)
    solver.send_signal(signal.SIGINT)
    _, rest = solver.communicate(timeout=60)
    assert solver.returncode == EXIT_INTERRUPTED, rest
    lines += rest.splitlines(keepends=True)
    progress = [line for line in lines if line.startswith("primary")]
    assert len(progress) >= 2
    assert all(" GPUs " in line and len(line) <= 81 for line in progress), progress
    assert not any("\r" in line or "\x1b" in line for line in lines), lines
    assert "interrupted: the best layout found so far was written" in rest
    assert run("verify", HARD, out).exit_code == 0


def test_batch_shows_each_running_scenario_redrawn_every_second_within_80_columns(tmp_path):
    long_name = "a-scenario-name-far-too-long-for-its-column"
    study = write_study(tmp_path, {"sweeps": {"description": [long_name, "b"]}}, base=HARD)
    output = tmp_path / "study.nc"
    terminal = Terminal(
        "batch", str(study), "-o", str(output), "--workers", "2", "--gap", "0",
        "--time-limit", "4",
    )  # fmt: skip
    while terminal.read(time.monotonic() - terminal.started + 1):
        assert time.monotonic() - terminal.started < 300, "the batch did not end"
    assert terminal.exit_code == 0, terminal.text()[-800:]
    first_bar = next(t for t, text in terminal.pieces if "batch [" in text)
    bars = [t for t, text in terminal.pieces if "batch [" in text]
    gaps = [b - a for a, b in itertools.pairwise(bars)]
    assert max(gaps) <= 1.0, [(round(t, 2), text) for t, text in terminal.pieces]
    assert bars[-1] - first_bar >= 4  # both solves ran to their time limit meanwhile
    drawn = _screen_lines("".join(text for t, text in terminal.pieces if t <= bars[-1]))
    assert all(len(line) < 80 for line in drawn), [line for line in drawn if len(line) >= 80]
    running = [line for line in drawn if "GPUs" in line and "description=" in line]
    assert any(re.match(r"  description=a-scenario-\S*~ ", line) for line in running), running
    assert any(line.lstrip().startswith("description=b ") for line in running), running
    assert any(re.search(r" [\d,]+ / [\d,]+ GPUs  gap ", line) for line in running), running


def test_explain_shows_its_progress_on_stderr(tmp_path):
    # The air hall asked for 44 of its 48 slots: the inlets fall short, and finding by
    # how much takes the elastic solve a few seconds of branch and bound.
    text = (ROOT / "instances" / "air-hall.yaml").read_text(encoding="utf-8")
    head, demand = text.split("\ndemand:", 1)
    demand = demand.replace("dgx-b200-rack: {}", "dgx-b200-rack: {min: 44}", 1)
    instance = tmp_path / "air-hall.yaml"
    instance.write_text(f"{head}\ndemand:{demand}", encoding="utf-8")
    done = subprocess.run(
        [RACKOPT, "explain", str(instance)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 3, done.stderr
    assert "inlet at " in done.stdout
    progress = [line for line in done.stderr.splitlines() if line.startswith("explain ")]
    assert progress and all(" best " in line and " bound " in line for line in progress)
    assert "\r" not in done.stderr and "\x1b" not in done.stderr


def _children(pid: int) -> int:
    """How many processes ``pid`` started, from /proc (the test runs on Linux)."""
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # not a process, or gone
            continue
        count += int(stat.rsplit(")", 1)[1].split()[1]) == pid
    return count


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_ctrl_c_to_the_parent_alone_stops_a_facility_solved_in_parts(tmp_path):
    # Two thermal halls with their own power and cooling: two parts, each solved in a
    # worker process, neither proven in test time. The Ctrl-C goes to the parent only (a
    # terminal would send it to the workers too): the parent must pass it on.
    args = ["--halls", "2", "--rows", "6", "--slots", "30", "--supply-temp-c", "23"]
    instance = generated_hall(tmp_path / "two-halls.yaml", *args)
    out = tmp_path / "two-halls.nc"
    terminal = Terminal("solve", str(instance), "-o", str(out), "--time-limit", "120")
    while _children(terminal.pid) < 2:  # the part workers
        assert terminal.read(time.monotonic() - terminal.started + 0.2), terminal.text()
        assert time.monotonic() - terminal.started < 120, "no part workers started"
    assert terminal.read(time.monotonic() - terminal.started + 3)
    os.kill(terminal.pid, signal.SIGINT)
    pressed = time.monotonic() - terminal.started
    while terminal.read(time.monotonic() - terminal.started + 1):
        assert time.monotonic() - terminal.started < pressed + 60, "Ctrl-C did not end it"
    assert terminal.exit_code == EXIT_INTERRUPTED, terminal.text()[-500:]
    # The whole facility's progress: the sums of the parts' incumbents and bounds.
    assert re.search(r"parts [012]/2 +[\d.]+s  best [\d,]+ GPUs  bound ", terminal.text())
    with xr.open_dataset(out) as ds:
        assert ds.attrs["status"] == "interrupted"
        assert '"parts": 2' in ds.attrs["model_size"]
    assert run("verify", instance, out).exit_code == 0


def test_batch_logs_plain_lines_when_stderr_is_no_terminal(tmp_path):
    study = write_study(tmp_path, {"sweeps": {"demand.gb300-nvl72.max": [0, 1, 2]}})
    done = subprocess.run(
        [RACKOPT, "batch", str(study), "-o", str(tmp_path / "study.nc"), "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
    finished = [line for line in done.stderr.splitlines() if "  last: " in line]
    assert len(finished) == 3  # one line as each scenario finishes
    assert finished[-1].startswith("batch [####################] 3/3 done")
    table = done.stdout.splitlines()[:-1]  # the last line names the (long) output path
    assert all(len(line) < 80 for line in table), table


def test_ctrl_c_in_the_second_stage_keeps_the_proven_gpu_count(tmp_path):
    out = tmp_path / "gb300.nc"
    instance = ROOT / "instances" / "gb300-hall.yaml"
    terminal = Terminal(
        "solve",
        str(instance),
        "-o",
        str(out),
        "--second-stage-nodes",
        "1000000",
        "--second-stage-gap",
        "0",
        "--second-stage-share",
        "0",
    )  # fmt: skip  (a cable stage that runs until stopped: no node, gap or time end)
    while "second stage" not in terminal.text():
        assert terminal.read(time.monotonic() - terminal.started + 0.5), terminal.text()
        assert time.monotonic() - terminal.started < 180, "no second stage shown"
    terminal.interrupt()
    time.sleep(0.05)
    terminal.interrupt()
    while terminal.read(time.monotonic() - terminal.started + 1):
        assert time.monotonic() - terminal.started < 240, "Ctrl-C did not end it"
    assert terminal.exit_code == EXIT_INTERRUPTED, terminal.text()[-500:]
    with xr.open_dataset(out) as ds:
        assert ds.attrs["status"] == "optimal"  # the GPU count was proven before
        assert "interrupted" in ds.attrs["tie_break_status"]
        assert int(ds["total_gpus"]) == 9792  # instances/README.md works it out
    assert run("verify", instance, out).exit_code == 0
