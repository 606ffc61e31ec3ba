#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// How the live path's helper threads are scheduled (`KIS_BACKGROUND_THREADS`): librdkafka's threads, the
/// producer's poll thread, the pipeline thread (while the socket reader processes inline) and the recorder's writer
/// and checkpointer. The socket reader itself keeps the default policy.
///
/// With `batch` they run under Linux's `SCHED_BATCH`: the same share of the CPU, but a helper that wakes up (a
/// librdkafka broker thread at the end of a linger period, the pipeline thread's millisecond poll) never preempts the
/// running thread; it waits for the next tick or for the reader to block. Measured (`scripts/bench --only live`, serve
/// at 20 000 frames/s, 2 shared cores): socket reader → produce enqueued p99 59–63 µs with every thread at the default
/// policy, 39 µs with the helpers under `SCHED_BATCH`.
public enum BackgroundThreads: String, Sendable, CaseIterable {
    /// Helpers under `SCHED_BATCH` (the default for `ingestd` and `ingest-record live`).
    case batch
    /// Every thread under the default policy (`SCHED_OTHER`).
    case normal

    /// Names the calling thread (as `top -H` and `/proc/<pid>/task/*/comm` show it; at most 15 bytes are kept) and,
    /// for `batch`, moves it to `SCHED_BATCH`. A failure (a kernel or a sandbox that refuses the policy) is logged
    /// once per process as a warning and otherwise ignored: the thread runs on under the default policy.
    public func enterCurrentThread(name: String?) {
        #if os(Linux)
        if let name { Self.nameCurrentThread(name) }
        guard self == .batch else { return }
        var parameters = sched_param(sched_priority: 0)
        if sched_setscheduler(0, Self.schedBatch, &parameters) != 0 {
            let reason = String(cString: strerror(errno))
            if !Self.warned.exchange(true, ordering: .relaxed) {
                Logger(label: "kis.threads").warning(
                    "could not run helper threads under SCHED_BATCH: \(reason); they keep the default policy, so they may preempt the socket reader more often. Set KIS_BACKGROUND_THREADS=normal to stop trying.",
                    metadata: ["thread": "\(name ?? "librdkafka")"])
            }
        }
        #endif
    }

    /// Whether the calling thread runs under `SCHED_BATCH` (for tests and diagnostics).
    public static var currentThreadIsBatch: Bool {
        #if os(Linux)
        return sched_getscheduler(0) == schedBatch
        #else
        return false
        #endif
    }

    private static let warned = Atomic<Bool>(false)

    /// Names the calling thread only, whatever its policy (threads outside the live path: serve's, the replay's).
    /// Foundation's `Thread.name` does not reach the kernel here. `pthread_setname_np` is a GNU extension that Swift's
    /// `Glibc` module does not import; writing the thread's own `comm` file is the same operation (proc(5)). At most
    /// 15 bytes are kept.
    public static func nameCurrentThread(_ name: String) {
        #if os(Linux)
        let fd = open("/proc/thread-self/comm", O_WRONLY)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        #endif
    }

    #if os(Linux)
    /// `SCHED_BATCH` from `<bits/sched.h>`: a GNU extension that Swift's `Glibc` module does not import.
    static let schedBatch: Int32 = 3
    #endif
}
