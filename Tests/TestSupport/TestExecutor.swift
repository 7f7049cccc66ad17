import Dispatch

/// A task executor on a thread of its own, for tests that hold database transactions open from
/// inside the test process. Swift Testing runs synchronous tests on the cooperative pool, and
/// those that wait for child processes block its threads (two on two cores) for seconds; a
/// transaction whose next statement waits for a cooperative thread stays open meanwhile, and the
/// cluster-wide `xid8` horizon with it, holding back every other test's pulls (seen on CI: a
/// migration's transaction left idle for 47 s). Work run here does not wait for that pool.
public final class TestExecutor: TaskExecutor, @unchecked Sendable {
    public static let shared = TestExecutor()
    private let queue = DispatchQueue(label: "fieldbook.test-executor", attributes: .concurrent)

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Runs `body`, and the tasks it starts, on this executor.
    public static func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await withTaskExecutorPreference(shared) { try await body() }
    }
}
