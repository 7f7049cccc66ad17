import Foundation

/// Starts child processes for the tests. The child's output goes to files its shell opens for it
/// (or nowhere): the test process holds no pipe and no file handle for it, and every launch is
/// made under one lock. (Foundation's `Process.run` crashed — a bad pointer in its memcpy — when
/// one test closed a handle or launched while another launched: seen on CI.)
public enum Spawn {
    private static let lock = NSLock()

    /// Starts `executable args` with the environment `env` (added to this process's), output to
    /// `stdout`/`stderr` (appended; nil: discarded), input from /dev/null. The process is the
    /// executable itself (the shell `exec`s it): its pid is the one to signal.
    public static func start(_ executable: URL, _ args: [String], env extra: [String: String] = [:],
                             stdout: String? = nil, stderr: String? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "exec \"$0\" \"$@\" >>\"$FIELDBOOK_SPAWN_OUT\" 2>>\"$FIELDBOOK_SPAWN_ERR\" </dev/null", executable.path] + args
        var env = ProcessInfo.processInfo.environment
        for (k, v) in extra { env[k] = v }
        env["FIELDBOOK_SPAWN_OUT"] = stdout ?? "/dev/null"
        env["FIELDBOOK_SPAWN_ERR"] = stderr ?? "/dev/null"
        p.environment = env
        try lock.withLock { try p.run() }
        return p
    }

    /// Waits until the file at `path` holds a complete first line, the process has ended, or
    /// `timeout` has passed; returns that line if any.
    public static func firstLine(of path: String, while p: Process, timeout: TimeInterval = 30) -> String? {
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
}
