import Foundation

/// Work spread over the machine's cores in chunks (sealing and opening cells: each costs a
/// fresh AEAD context in swift-crypto, about 1.5 µs, so a batch of 60,000 cells is worth it).
public enum ParallelMap {
    /// `f(0) … f(n-1)`, in order; the first error thrown is rethrown. Serial below `2 × chunk`.
    public static func map<T>(_ n: Int, chunk: Int = 512, _ f: (Int) throws -> T) throws -> [T] {
        if n < 2 * chunk || ProcessInfo.processInfo.activeProcessorCount < 2 { return try (0..<n).map(f) }
        var out = [T?](repeating: nil, count: n)
        let failure = Failure()
        let chunks = (n + chunk - 1) / chunk
        withoutActuallyEscaping(f) { f in
            let work = Work(f: f)
            out.withUnsafeMutableBufferPointer { buffer in
                let results = UnsafeBox(buffer)
                DispatchQueue.concurrentPerform(iterations: chunks) { c in
                    for i in (c * chunk)..<min(n, (c + 1) * chunk) {
                        do { results.buffer[i] = try work.f(i) } catch {
                            failure.set(error)
                            return
                        }
                    }
                }
            }
        }
        if let e = failure.error { throw e }
        return out.map { $0! }
    }

    /// The work, called from several threads: it only reads what it captured.
    private struct Work<T>: @unchecked Sendable {
        let f: (Int) throws -> T
    }

    /// The results buffer, written at distinct indices from distinct threads.
    private struct UnsafeBox<T>: @unchecked Sendable {
        let buffer: UnsafeMutableBufferPointer<T?>
        init(_ b: UnsafeMutableBufferPointer<T?>) { buffer = b }
    }

    private final class Failure: @unchecked Sendable {
        private let lock = NSLock()
        private var first: (any Error)?
        var error: (any Error)? { lock.withLock { first } }
        func set(_ e: any Error) { lock.withLock { if first == nil { first = e } } }
    }
}
