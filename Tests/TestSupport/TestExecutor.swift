import Foundation

/// A task executor on a thread of its own, for tests that hold database transactions open from
/// inside the test process. Swift Testing runs synchronous tests on the cooperative pool, and
/// those that wait for child processes block its threads (two on two cores) for seconds; a
/// transaction whose next statement waits for a cooperative thread stays open meanwhile, and the
/// cluster-wide `xid8` horizon with it, holding back every other test's pulls (seen on CI: a
/// migration's transaction left idle for 47 s). Work run here does not wait for that pool, nor
/// for Dispatch's (a concurrent queue shares the global one, which `concurrentPerform` in the
/// duplicate finder fills for minutes: a test here took 250 s on CI, its lock holder starved).
public final class TestExecutor: TaskExecutor, @unchecked Sendable {
    public static let shared = TestExecutor()
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    private init() {
        let thread = Thread { [self] in self.serve() }
        thread.name = "fieldbook.test-executor"
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Runs the jobs, in the order they came, for the life of the process.
    private func serve() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }

    /// Starts an unstructured task on this executor (`Task {}` does not inherit an executor
    /// preference: it would run on the cooperative pool, which other tests can starve for
    /// minutes, while it holds a lock or a connection the test waits for).
    @discardableResult
    public static func task<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) -> Task<T, any Error> {
        Task(executorPreference: shared) { try await body() }
    }

    /// Runs `body`, and the tasks it starts, on this executor.
    public static func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await withTaskExecutorPreference(shared) { try await body() }
    }
}
