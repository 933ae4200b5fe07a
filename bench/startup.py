"""Benchmark of the console's start-up: prints figures, asserts nothing.

    .venv/bin/python bench/startup.py [--runs N] [--fresh]

Each run starts `mentorbot shell` in a new process, with a config whose data directory is a
temporary folder, and times from the process's start to the first prompt on its stdout (the
line after which the console reads what the user types); then it closes stdin so the console
quits. Also shown: the CPU seconds (user + system) of the whole process, which vary less than
wall time on a shared machine.

A first start, not counted, creates and migrates the database and writes Python's bytecode
cache (the runs allow it even where PYTHONDONTWRITEBYTECODE is set, as an installed bot has
one); the counted runs are usual starts. With `--fresh` every run gets a new database.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "Type /help"


def mentorbot() -> list[str]:
    """The installed `mentorbot` command beside this interpreter, else `python -m bot`."""
    script = Path(sys.executable).with_name("mentorbot")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bot"]


def one_start(config: Path) -> tuple[float, float]:
    """Seconds from starting `mentorbot shell` to its first prompt, and its CPU seconds."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    proc = subprocess.Popen(
        [*mentorbot(), "--config", str(config), "shell"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=config.parent,
        env={**env, "MENTORBOT_CONFIG": ""},
    )
    assert proc.stdout is not None and proc.stdin is not None
    for line in proc.stdout:
        if line.startswith(PROMPT):
            took = time.perf_counter() - began
            break
    else:
        raise RuntimeError(f"no prompt; stderr: {proc.stderr.read() if proc.stderr else ''}")
    proc.stdin.close()
    proc.wait(timeout=30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return took, cpu


def write_config(folder: Path) -> Path:
    config = folder / "config.toml"
    config.write_text(f'[storage]\ndata_dir = "{folder / "data"}"\n\n[logging]\nlevel = "ERROR"\n')
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fresh", action="store_true", help="a new database for every run")
    args = parser.parse_args()
    times: list[float] = []
    cpus: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        one_start(write_config(Path(tmp)))
        for i in range(args.runs):
            folder = Path(tmp) / str(i) if args.fresh else Path(tmp)
            folder.mkdir(exist_ok=True)
            took, cpu = one_start(write_config(folder))
            times.append(took)
            cpus.append(cpu)
    shown = ", ".join(f"{t:.2f}" for t in times)
    print(f"mentorbot shell, start to first prompt ({args.runs} runs): {shown} s")
    print(
        f"min {min(times):.2f} s, median {statistics.median(times):.2f} s (target < 1.5 s); "
        f"CPU per run min {min(cpus):.2f} s, median {statistics.median(cpus):.2f} s; "
        f"load average {os.getloadavg()[0]:.1f}"
        + ("; each run migrated a new database" if args.fresh else "")
    )


if __name__ == "__main__":
    main()
