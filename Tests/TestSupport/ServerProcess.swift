import Foundation

/// A real `fieldbook-server serve` process on 127.0.0.1, on a free port.
public final class ServerProcess: @unchecked Sendable {
    public let data: String
    public private(set) var port: Int
    private var process: SpawnedProcess?
    /// `https://` when the server was started with a certificate.
    public var url: String { (arguments.contains("--tls-cert") ? "https" : "http") + "://127.0.0.1:\(port)" }

    /// Starts a server on `data`; `port` 0 lets the kernel pick a free one.
    /// Extra environment of the process (e.g. `ClockSkew.shifted(minutes:)` for a wrong clock).
    public var environment: [String: String]

    /// Extra arguments of `serve` (e.g. `--encrypted`).
    public var arguments: [String]

    /// The PostgreSQL database the server keeps its store in (`--database`), or nil for the
    /// embedded store in `data` (which holds the server's log either way).
    public let database: String?

    public init(data: String, port: Int = 0, environment: [String: String] = [:], arguments: [String] = [], database: String? = nil) throws {
        self.data = data
        self.port = port
        self.environment = environment
        self.database = database
        self.arguments = arguments + (database.map { ["--database", $0] } ?? [])
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try start()
    }

    /// A server on a new store of the given kind (a fresh database for PostgreSQL).
    public convenience init(data: String, store: TestStore, environment: [String: String] = [:], arguments: [String] = []) throws {
        try self.init(data: data, environment: environment, arguments: arguments, database: try store.newDatabase())
    }

    deinit { stop(signal: SIGKILL) }

    public static var binary: URL { CLIRunner.product("fieldbook-server") }

    /// (Re)starts the process on the same data directory and, once known, the same port.
    public func start() throws {
        let outPath = (data as NSString).appendingPathComponent("server.out")
        try? FileManager.default.removeItem(atPath: outPath)
        let p = try Spawn.start(Self.binary, ["serve", "--data", data, "--host", "127.0.0.1", "--port", String(port), "--log-level", "warning"] + arguments,
                                env: environment, stdout: outPath, stderr: (data as NSString).appendingPathComponent("server.log"))
        process = p
        // Read "fieldbook-server listening on 127.0.0.1:PORT".
        let first = Spawn.firstLine(of: outPath, while: p) ?? ""
        if let colon = first.lastIndex(of: ":"), let bound = Int(first[first.index(after: colon)...].prefix { $0.isNumber }) {
            port = bound
            return
        }
        stop(signal: SIGKILL)
        throw NSError(domain: "ServerProcess", code: 1, userInfo: [NSLocalizedDescriptionKey: "server did not start: \(first)"])
    }

    /// Stops the process with `signal` (SIGTERM: graceful; SIGKILL: crash) and waits for it.
    public func stop(signal: Int32 = SIGTERM) {
        guard let p = process, p.isRunning else { process = nil; return }
        kill(p.processIdentifier, signal)
        p.waitUntilExit()
        process = nil
    }

    public var isRunning: Bool { process?.isRunning ?? false }

    /// The running process's id.
    public var processIdentifier: pid_t? { process?.processIdentifier }

    /// The last `bytes` of the server's log (stderr), to name in a failed expectation.
    public func logTail(_ bytes: Int = 4000) -> String {
        let text = (try? String(contentsOfFile: (data as NSString).appendingPathComponent("server.log"), encoding: .utf8)) ?? ""
        return String(text.suffix(bytes))
    }

    /// Creates a token with the real binary and returns it.
    public func token(_ name: String, regions: String, coordinator: Bool = false) throws -> String {
        var args = ["token", "create", "--data", data, "--name", name, "--regions", regions] + (database.map { ["--database", $0] } ?? [])
        if coordinator { args.append("--coordinator") }
        let r = try CLIRunner.exec(Self.binary, args, env: environment)
        guard r.status == 0 else { throw NSError(domain: "ServerProcess", code: 2, userInfo: [NSLocalizedDescriptionKey: r.stderr]) }
        return r.line
    }
}

/// A process whose clock is wrong by `minutes` (`FIELDBOOK_CLOCK_SKEW_MS`, read by both binaries).
public enum ClockSkew {
    public static func shifted(minutes: Int) -> [String: String] {
        ["FIELDBOOK_CLOCK_SKEW_MS": String(Int64(minutes) * 60_000)]
    }
}
