#!/usr/bin/env python3
"""Where the replay's CPU goes, per thread (a diagnostic next to scripts/bench, not part of the tests).

    scripts/replay_threads.py [--pairs 6] [--recording PATH]

Runs, in rounds, `ingest-replay --max`, `kis-bench same-bytes` (the same messages produced from memory by a bare
librdkafka loop), `rdkafka_performance` (the same count and size, the bench's command), each on a freshly restarted
local broker, and `ingest-replay --max --dry-run` (reading, parsing and encoding only). Every thread's CPU time, and
its time runnable but waiting for a core, comes from /proc/<pid>/task/<tid>/schedstat, sampled every 3 ms until the
process exits; the broker's from /proc/<pid>/stat and its threads' schedstat. Prints each run, the medians, and the
CPU budget: the best ratio to rdkafka_performance that the loop's work plus the dry run's could reach with both cores
busy all the time. Expects release binaries (`swift build -c release`, or scripts/bench) and starts the local services
if needed. README "Performance", items 42 and 45.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

from bench import ROOT, broker_cpu, fresh_broker, rdkafka_performance_command, service_pid, synth

BROKERS = os.environ.get("KIS_BENCH_BROKERS", "127.0.0.1:19092")


def broker_waiting():
    """Seconds the broker's threads have spent runnable but waiting for a core (schedstat's second field)."""
    pid = service_pid("broker")
    if not pid:
        return 0.0
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def thread_key(name):
    return "rdk:broker" if name.startswith("rdk:broker") else name


def run(cmd, fresh=True):
    """Runs cmd; returns (wall seconds, {thread name: CPU seconds}, broker CPU seconds meanwhile, stdout,
    {thread name: seconds runnable but waiting for a core}, the broker's waiting seconds meanwhile)."""
    if fresh:
        fresh_broker()
    broker0, waiting0 = broker_cpu(), broker_waiting()
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
                fields = open(f"/proc/{p.pid}/task/{tid}/schedstat").read().split()
                ns, waited = int(fields[0]), int(fields[1])
            except (OSError, ValueError, IndexError):
                continue
            last[tid] = (name, ns, waited)
        time.sleep(0.003)
    out, err = p.communicate()
    wall = time.monotonic() - start
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}): {err[-2000:]}")
    threads, waits = {}, {}
    for name, ns, waited in last.values():
        threads[thread_key(name)] = threads.get(thread_key(name), 0.0) + ns / 1e9
        waits[thread_key(name)] = waits.get(thread_key(name), 0.0) + waited / 1e9
    return wall, threads, broker_cpu() - broker0, out, waits, broker_waiting() - waiting0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=6, help="rounds of ours, the loop and rdkafka_performance")
    ap.add_argument("--recording", default=os.path.join(ROOT, "bench-results", "replay-threads-day.sqlite"))
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"))
    ap.add_argument("--rdkafka-performance",
                    default=os.path.join(os.environ.get("KIS_RDKAFKA_PREFIX", os.path.join(ROOT, ".deps", "librdkafka")),
                                         "bin", "rdkafka_performance"))
    a = ap.parse_args()
    for tool in ("ingest-replay", "kis-bench", "ingest-record"):
        if not os.access(os.path.join(a.bin, tool), os.X_OK):
            sys.exit(f"{a.bin}/{tool} is missing: build in release mode first (. scripts/env.sh; "
                     f"swift build -c release \"${{KIS_SWIFT_FLAGS[@]}}\"), or run scripts/bench once")
    if not os.access(a.rdkafka_performance, os.X_OK):
        sys.exit(f"{a.rdkafka_performance} is missing: scripts/env.sh builds librdkafka with it (or pass --rdkafka-performance)")
    subprocess.run([os.path.join(ROOT, "scripts/services"), "start"], check=True, stdout=subprocess.DEVNULL)
    # The bench's replay day: 40 symbols, 12 trades and 16 books per second each, 20 minutes (1.73 M frames).
    os.makedirs(os.path.dirname(a.recording), exist_ok=True)
    synth(a.recording, 40, 12, 16, 20, a)

    def show(label, wall, threads, broker, waits, broker_waits):
        tops = " ".join(f"{k}={v:.2f}" for k, v in sorted(threads.items(), key=lambda x: -x[1]) if v >= 0.01)
        waiting = " ".join(f"{k}={v:.2f}" for k, v in sorted(waits.items(), key=lambda x: -x[1]) if v >= 0.01)
        print(f"{label:10} wall {wall:5.2f} s, broker {broker:4.2f} s; {tops}", flush=True)
        print(f"{'':10} waiting for a core: {waiting or '-'}; broker {broker_waits:.2f}", flush=True)

    summary = os.path.join(os.path.dirname(a.recording), "replay-threads-summary.json")
    ours, loop, theirs, dry = [], [], [], []
    for i in range(a.pairs):
        prefix = f"threads-{random.randrange(1 << 30):08x}."
        wall, threads, broker, _, waits, bw = run([f"{a.bin}/ingest-replay", a.recording, "--max", "--topic-prefix",
                                                   prefix, "--summary-json", summary])
        # The producing thread is the one neither librdkafka's, the reader's nor the process's main thread.
        producing = sum(v for k, v in threads.items()
                        if not k.startswith("rdk:") and k not in ("replay-reader", "ingest-replay"))
        ours.append({"wall": wall, "producing": producing, "rdk:broker": threads.get("rdk:broker", 0.0),
                     "reader": threads.get("replay-reader", 0.0), "broker": broker, "total": sum(threads.values()),
                     "rdk:broker waiting": waits.get("rdk:broker", 0.0), "broker waiting": bw})
        show("ours", wall, threads, broker, waits, bw)
        s = json.load(open(summary))
        messages, size = s["delivered"], max(1, round(s["key_value_bytes"] / max(1, s["delivered"])))
        _, threads, broker, out, waits, bw = run([f"{a.bin}/kis-bench", "same-bytes", a.recording,
                                                  "--topic-prefix", prefix + "sb."])
        d = json.loads(out.strip().splitlines()[-1])
        rdk = sum(v for k, v in threads.items() if k.startswith("rdk:"))
        # cpu_s is the loop's process CPU while producing (its messages were encoded before, not timed).
        loop.append({"wall": d["seconds"], "producing": d["cpu_s"] - rdk, "rdk:broker": threads.get("rdk:broker", 0.0),
                     "broker": broker, "total": d["cpu_s"], "rdk:broker waiting": waits.get("rdk:broker", 0.0),
                     "broker waiting": bw})
        show("same-bytes", d["seconds"], threads, broker, waits, bw)
        # scripts/bench's rdkafka_performance command, for ingest-replay's message count and size.
        wall, threads, broker, _, waits, bw = run(rdkafka_performance_command(
            a.rdkafka_performance, f"{prefix}rdkafka-perf", BROKERS, size, messages, "snappy"))
        theirs.append({"wall": wall, "rdk:broker": threads.get("rdk:broker", 0.0), "broker": broker,
                       "total": sum(threads.values()), "rdk:broker waiting": waits.get("rdk:broker", 0.0),
                       "broker waiting": bw})
        show("rdkafka_p", wall, threads, broker, waits, bw)
        # In the same round, so that the host's mood of the minute weighs on all four alike.
        wall, threads, _, _, waits, bw = run([f"{a.bin}/ingest-replay", a.recording, "--max", "--dry-run"],
                                             fresh=False)
        producing = sum(v for k, v in threads.items() if k not in ("replay-reader", "ingest-replay"))
        dry.append({"wall": wall, "producing": producing, "reader": threads.get("replay-reader", 0.0),
                    "total": sum(threads.values())})
        show("dry-run", wall, threads, 0.0, waits, 0.0)

    def med(rows, key):
        return statistics.median(r[key] for r in rows) if rows else float("nan")

    print("\nmedians (CPU seconds; \"waiting\": runnable, no core free):")
    print(f"  ingest-replay --max: wall {med(ours, 'wall'):.2f}, producing thread {med(ours, 'producing'):.2f}, "
          f"librdkafka broker thread {med(ours, 'rdk:broker'):.2f} (waiting {med(ours, 'rdk:broker waiting'):.2f}), "
          f"reader {med(ours, 'reader'):.2f}, all threads {med(ours, 'total'):.2f}; "
          f"tansu {med(ours, 'broker'):.2f} (waiting {med(ours, 'broker waiting'):.2f})")
    print(f"  same-bytes loop:     wall {med(loop, 'wall'):.2f} (producing phase), producing thread "
          f"{med(loop, 'producing'):.2f}, librdkafka broker thread {med(loop, 'rdk:broker'):.2f} "
          f"(waiting {med(loop, 'rdk:broker waiting'):.2f}), all threads {med(loop, 'total'):.2f}; "
          f"tansu {med(loop, 'broker'):.2f} (waiting {med(loop, 'broker waiting'):.2f})")
    print(f"  rdkafka_performance: wall {med(theirs, 'wall'):.2f}, librdkafka broker thread "
          f"{med(theirs, 'rdk:broker'):.2f} (waiting {med(theirs, 'rdk:broker waiting'):.2f}), all threads "
          f"{med(theirs, 'total'):.2f}; tansu {med(theirs, 'broker'):.2f} (waiting {med(theirs, 'broker waiting'):.2f})")
    print(f"  --dry-run:           wall {med(dry, 'wall'):.2f}, producing thread {med(dry, 'producing'):.2f}, "
          f"reader {med(dry, 'reader'):.2f}")
    if ours and loop and theirs and dry:
        rounds = list(zip(ours, loop, theirs, dry))
        print("  excess per round (ours − loop − the round's dry run): producing thread "
              f"{statistics.median(o['producing'] - l['producing'] - d['producing'] for o, l, _, d in rounds):.2f}, "
              f"librdkafka broker thread {statistics.median(o['rdk:broker'] - l['rdk:broker'] for o, l, _, _ in rounds):.2f}, "
              f"reader {statistics.median(o['reader'] - d['reader'] for o, _, _, d in rounds):.2f}")
        print(f"  ours ÷ loop, wall per round: {statistics.median(l['wall'] / o['wall'] for o, l in zip(ours, loop)):.2f}×; "
              f"ours ÷ rdkafka_performance: {statistics.median(t['wall'] / o['wall'] for o, t in zip(ours, theirs)):.2f}×; "
              f"loop ÷ rdkafka_performance: {statistics.median(t['wall'] / l['wall'] for l, t in zip(loop, theirs)):.2f}×")
        # The budget. Whatever ingest-replay does, it produces exactly the loop's messages (the loop's CPU and the
        # broker's meanwhile) and reads, parses and encodes them (the dry run's CPU), on the two cores the broker
        # shares. With both cores busy all the time (no run reaches it), its wall is at least half that sum.
        cores = os.cpu_count() or 2
        floors = [(l["total"] + l["broker"] + d["total"]) / cores for _, l, _, d in rounds]
        ceilings = [t["wall"] / f for t, f in zip(theirs, floors)]
        allowed = [cores * t["wall"] / 0.8 - l["total"] - l["broker"] for l, t in zip(loop, theirs)]
        print(f"  budget: the loop's work with tansu's {med(loop, 'total') + med(loop, 'broker'):.2f} CPU s plus reading, "
              f"parsing and encoding {med(dry, 'total'):.2f} CPU s, on {cores} cores busy all the time, takes at least "
              f"{statistics.median(floors):.2f} s: at best {statistics.median(ceilings):.2f}× rdkafka_performance "
              f"(per round {min(ceilings):.2f}–{max(ceilings):.2f}×). 0.8× leaves "
              f"{statistics.median(allowed):.2f} CPU s (per round {min(allowed):.2f}–{max(allowed):.2f}) for reading, "
              f"parsing and encoding, with no other excess.")


if __name__ == "__main__":
    main()
