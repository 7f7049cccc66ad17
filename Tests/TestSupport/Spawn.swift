import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starts child processes for the tests with `posix_spawn`, not Foundation's `Process`
/// (whose `run` crashed on CI — a bad pointer in its memcpy — when tests launched children from
/// several threads). The child's output goes to files opened for it by the spawn itself (or to
/// /dev/null); its input is /dev/null; it inherits no other descriptor of the test process and
/// starts with default signal handling and an empty signal mask. The test process holds no pipe
/// and no handle for it.
public enum Spawn {
    /// Starts `executable args` with the environment `env` (added to this process's), output to
    /// `stdout`/`stderr` (appended; nil: discarded).
    public static func start(_ executable: URL, _ args: [String], env extra: [String: String] = [:],
                             stdout: String? = nil, stderr: String? = nil) throws -> SpawnedProcess {
        var env = ProcessInfo.processInfo.environment
        for (k, v) in extra { env[k] = v }

        var actions = posix_spawn_file_actions_t()
        try check(posix_spawn_file_actions_init(&actions), "file actions")
        defer { posix_spawn_file_actions_destroy(&actions) }
        let append = O_WRONLY | O_CREAT | O_APPEND
        try check(posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0), "stdin")
        try check(posix_spawn_file_actions_addopen(&actions, 1, stdout ?? "/dev/null", append, 0o644), "stdout")
        try check(posix_spawn_file_actions_addopen(&actions, 2, stderr ?? "/dev/null", append, 0o644), "stderr")
        try check(closeFrom(&actions, 3), "close inherited descriptors")

        var attributes = posix_spawnattr_t()
        try check(posix_spawnattr_init(&attributes), "attributes")
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        try check(posix_spawnattr_setsigdefault(&attributes, &all), "signal defaults")
        try check(posix_spawnattr_setsigmask(&attributes, &none), "signal mask")
        try check(posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)), "flags")

        let argv = ([executable.path] + args).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid = pid_t()
        try check(posix_spawn(&pid, executable.path, &actions, &attributes, argv, envp), "spawn \(executable.path)")
        return SpawnedProcess(pid: pid)
    }

    /// Waits until the file at `path` holds a complete first line, the process has ended, or
    /// `timeout` has passed; returns that line if any.
    public static func firstLine(of path: String, while p: SpawnedProcess, timeout: TimeInterval = 30) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: path, encoding: .utf8), let nl = text.firstIndex(of: "\n") {
                return String(text[..<nl])
            }
            if !p.isRunning { return nil }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return nil
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), looked up at run time: Swift's
    /// Glibc module does not export it.
    private static func closeFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ fd: Int32) -> Int32 {
        typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return ENOSYS }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)(actions, fd)
    }

    private static func check(_ code: Int32, _ what: String) throws {
        guard code == 0 else {
            throw NSError(domain: "Spawn", code: Int(code), userInfo: [NSLocalizedDescriptionKey: "\(what): \(String(cString: strerror(code)))"])
        }
    }
}

/// A child started by `Spawn`. Reaped by `isRunning` or `waitUntilExit`, never by anyone else.
public final class SpawnedProcess: @unchecked Sendable {
    public let processIdentifier: pid_t
    private let lock = NSLock()
    private var status: Int32?

    init(pid: pid_t) { processIdentifier = pid }

    /// False once the child has exited (it is then reaped).
    public var isRunning: Bool {
        lock.withLock {
            if status != nil { return false }
            var raw: Int32 = 0
            let r = waitpid(processIdentifier, &raw, WNOHANG)
            if r == processIdentifier { status = raw; return false }
            return r == 0
        }
    }

    /// Blocks until the child has exited.
    public func waitUntilExit() {
        lock.withLock {
            guard status == nil else { return }
            var raw: Int32 = 0
            while true {
                let r = waitpid(processIdentifier, &raw, 0)
                if r == processIdentifier { status = raw; return }
                if r == -1 && errno == EINTR { continue }
                status = -1
                return
            }
        }
    }

    /// The exit code, or the number of the signal that ended it (as Foundation's `Process` gives).
    public var terminationStatus: Int32 {
        waitUntilExit()
        let raw = lock.withLock { status ?? -1 }
        let signal = raw & 0x7f
        return signal == 0 ? (raw >> 8) & 0xff : signal
    }
}
