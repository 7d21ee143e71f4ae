"""py-spy over a real ``picky-mock serve`` under wrk load: where the server's CPU goes per request.

    python bench/profile_server.py [--conns 16] [--seconds 8] [--log-level info] [--config FILE]

Starts ``picky-mock serve --port 0`` (log to bench/results/profile-server.log), loads it with wrk
(single-recipient push, bench/push.lua), samples it with ``py-spy record --format raw`` meanwhile,
and prints the share of the samples under each frame (inclusive) and the frames with most own samples.
Installs py-spy with pip when missing. Not part of ``bash bench/run``. Needs ptrace (root here).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SINGLE = '{"token":"t","application":"1","globalmessage":"hello","data":[{"number":"5511987654321"}]}'


def frame_name(frame: str) -> str:
    name, _, where = frame.partition(" (")
    module = where.split(":")[0].split("/site-packages/")[-1].split("/work/main/")[-1]
    return f"{name} ({module})" if where else name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--config", help="a config file for the server (a lifecycle policy, webhooks...)")
    args = parser.parse_args()
    if shutil.which("py-spy") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
    RESULTS.mkdir(exist_ok=True)
    exe = shutil.which("picky-mock")
    cmd = [exe] if exe else [sys.executable, "-m", "picky_mock"]
    log = open(RESULTS / "profile-server.log", "wb")
    extra = ["--config", args.config] if args.config else []
    server = subprocess.Popen([*cmd, "serve", "--port", "0", "--log-level", args.log_level, *extra],
                              stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
    try:
        assert server.stdout is not None
        line = server.stdout.readline().decode()
        url = next(w for w in line.split() if w.startswith("http://"))
        env = dict(os.environ, BENCH_BODY=SINGLE)
        wrk = subprocess.Popen(["wrk", "-t2", f"-c{args.conns}", f"-d{args.seconds + 4}s", "-s", str(HERE / "push.lua"),
                                url], stdout=subprocess.PIPE, text=True, env=env)
        time.sleep(2)
        raw = RESULTS / "profile-server.raw"
        spy = subprocess.run(["py-spy", "record", "-r", "250", "-d", str(args.seconds), "-p", str(server.pid),
                              "--format", "raw", "-o", str(raw)], capture_output=True, text=True)
        out, _ = wrk.communicate()
        if spy.returncode != 0:
            raise SystemExit(f"py-spy failed: {spy.stderr}")
    finally:
        server.terminate()
        server.wait(10)
        log.close()
    rps = next((x for x in out.splitlines() if x.startswith("WRK_RESULT")), "")
    total = 0
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = [frame_name(f) for f in stack.split(";")]
        for name in set(frames):
            inclusive[name] += n
        own[frames[-1]] += n
    print(f"picky-mock serve --log-level {args.log_level}, wrk {args.conns} conns: {rps}")
    print(f"{total} samples (non-idle); share of samples under each frame (inclusive):")
    for name, n in inclusive.most_common(args.top):
        print(f"  {n / total:6.1%}  {name}")
    print("frames with the most own samples:")
    for name, n in own.most_common(20):
        print(f"  {n / total:6.1%}  {name}")


if __name__ == "__main__":
    threading.current_thread().name = "profile_server"
    main()
