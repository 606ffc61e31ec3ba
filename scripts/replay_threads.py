#!/usr/bin/env python3
"""Where the replay's CPU goes, per thread (a diagnostic next to scripts/bench, not part of the tests).

    scripts/replay_threads.py [--pairs 6] [--dry-runs 3] [--recording PATH]

Runs `ingest-replay --max` and `kis-bench same-bytes` (the same messages produced from memory by a bare librdkafka
loop) alternately, each on a freshly restarted local broker, then `ingest-replay --max --dry-run` (reading, parsing
and encoding only). Every thread's CPU time comes from /proc/<pid>/task/<tid>/schedstat, sampled every 3 ms until the
process exits; the broker's from /proc/<pid>/stat. Prints each run and the medians. Expects release binaries
(`swift build -c release`, or scripts/bench) and starts the local services if needed. README "Performance", item 42.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROKERS = os.environ.get("KIS_BENCH_BROKERS", "127.0.0.1:19092")


def broker_cpu():
    pid = int(open(os.path.join(os.environ.get("KIS_RUN", os.path.join(ROOT, ".run")), "broker.pid")).read())
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(cmd, fresh_broker=True):
    """Runs cmd; returns (wall seconds, {thread name: CPU seconds}, broker CPU seconds meanwhile, stdout)."""
    if fresh_broker:
        subprocess.run([os.path.join(ROOT, "scripts/services"), "restart", "broker"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    broker0 = broker_cpu()
    start = time.monotonic()
    p = subprocess.Popen(cmd, env=dict(os.environ, KAFKA_BROKERS=BROKERS), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    last = {}
    while p.poll() is None:
        try:
            tids = os.listdir(f"/proc/{p.pid}/task")
        except OSError:
            tids = []
        for tid in tids:
            try:
                name = open(f"/proc/{p.pid}/task/{tid}/comm").read().strip()
                ns = int(open(f"/proc/{p.pid}/task/{tid}/schedstat").read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            last[tid] = (name, ns)
        time.sleep(0.003)
    out, err = p.communicate()
    wall = time.monotonic() - start
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}): {err[-2000:]}")
    threads = {}
    for name, ns in last.values():
        key = "rdk:broker" if name.startswith("rdk:broker") else name
        threads[key] = threads.get(key, 0.0) + ns / 1e9
    return wall, threads, broker_cpu() - broker0, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--dry-runs", type=int, default=3)
    ap.add_argument("--recording", default=os.path.join(ROOT, "bench-results", "replay-threads-day.sqlite"))
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"))
    a = ap.parse_args()
    for tool in ("ingest-replay", "kis-bench", "ingest-record"):
        if not os.access(os.path.join(a.bin, tool), os.X_OK):
            sys.exit(f"{a.bin}/{tool} is missing: build in release mode first (. scripts/env.sh; "
                     f"swift build -c release \"${{KIS_SWIFT_FLAGS[@]}}\"), or run scripts/bench once")
    subprocess.run([os.path.join(ROOT, "scripts/services"), "start"], check=True, stdout=subprocess.DEVNULL)
    if not os.path.exists(a.recording):
        # The bench's replay day: 40 symbols, 12 trades and 16 books per second each, 20 minutes (1.73 M frames).
        os.makedirs(os.path.dirname(a.recording), exist_ok=True)
        codes = ",".join(f"{100000 + i * 7:06d}" for i in range(40))
        print(f"generating {a.recording}", flush=True)
        subprocess.run([f"{a.bin}/ingest-record", "synth", "--symbols", codes, "--trades-per-second", "12",
                        "--books-per-second", "16", "--from", "2025-07-30T09:00:00+09:00",
                        "--to", "2025-07-30T09:20:00+09:00", "--out", a.recording, "--batch-size", "20000"],
                       check=True, capture_output=True)

    def show(label, wall, threads, broker):
        tops = " ".join(f"{k}={v:.2f}" for k, v in sorted(threads.items(), key=lambda x: -x[1]) if v >= 0.01)
        print(f"{label:10} wall {wall:5.2f} s, broker {broker:4.2f} s; {tops}", flush=True)

    ours, loop, dry = [], [], []
    for i in range(a.pairs):
        prefix = f"threads-{random.randrange(1 << 30):08x}."
        wall, threads, broker, _ = run([f"{a.bin}/ingest-replay", a.recording, "--max", "--topic-prefix", prefix])
        # The producing thread is the one neither librdkafka's, the reader's nor the process's main thread.
        producing = sum(v for k, v in threads.items()
                        if not k.startswith("rdk:") and k not in ("replay-reader", "ingest-replay"))
        ours.append({"wall": wall, "producing": producing, "rdk:broker": threads.get("rdk:broker", 0.0),
                     "reader": threads.get("replay-reader", 0.0), "broker": broker, "total": sum(threads.values())})
        show("ours", wall, threads, broker)
        _, threads, broker, out = run([f"{a.bin}/kis-bench", "same-bytes", a.recording, "--topic-prefix", prefix + "sb."])
        d = json.loads(out.strip().splitlines()[-1])
        rdk = sum(v for k, v in threads.items() if k.startswith("rdk:"))
        # cpu_s is the loop's process CPU while producing (its messages were encoded before, not timed).
        loop.append({"wall": d["seconds"], "producing": d["cpu_s"] - rdk, "rdk:broker": threads.get("rdk:broker", 0.0),
                     "broker": broker, "total": d["cpu_s"]})
        show("same-bytes", d["seconds"], threads, broker)
    for _ in range(a.dry_runs):
        wall, threads, _, _ = run([f"{a.bin}/ingest-replay", a.recording, "--max", "--dry-run"], fresh_broker=False)
        producing = sum(v for k, v in threads.items() if k not in ("replay-reader", "ingest-replay"))
        dry.append({"wall": wall, "producing": producing, "reader": threads.get("replay-reader", 0.0)})
        show("dry-run", wall, threads, 0.0)

    def med(rows, key):
        return statistics.median(r[key] for r in rows) if rows else float("nan")

    print("\nmedians (CPU seconds):")
    print(f"  ingest-replay --max: wall {med(ours, 'wall'):.2f}, producing thread {med(ours, 'producing'):.2f}, "
          f"librdkafka broker thread {med(ours, 'rdk:broker'):.2f}, reader {med(ours, 'reader'):.2f}, "
          f"all threads {med(ours, 'total'):.2f}; tansu {med(ours, 'broker'):.2f}")
    print(f"  same-bytes loop:     wall {med(loop, 'wall'):.2f} (producing phase), producing thread "
          f"{med(loop, 'producing'):.2f}, librdkafka broker thread {med(loop, 'rdk:broker'):.2f}, "
          f"all threads {med(loop, 'total'):.2f}; tansu {med(loop, 'broker'):.2f}")
    print(f"  --dry-run:           wall {med(dry, 'wall'):.2f}, producing thread {med(dry, 'producing'):.2f}, "
          f"reader {med(dry, 'reader'):.2f}")
    if ours and loop and dry:
        base = med(dry, "producing")
        print("  excess per pair (ours − loop − dry-run's): producing thread "
              f"{statistics.median(o['producing'] - l['producing'] - base for o, l in zip(ours, loop)):.2f}, "
              f"librdkafka broker thread {statistics.median(o['rdk:broker'] - l['rdk:broker'] for o, l in zip(ours, loop)):.2f}, "
              f"reader {med(ours, 'reader') - med(dry, 'reader'):.2f}")
        print(f"  ours ÷ loop, wall per pair: {statistics.median(l['wall'] / o['wall'] for o, l in zip(ours, loop)):.2f}×")


if __name__ == "__main__":
    main()
