import Foundation

/// Runs the real `fieldbook` binary against a temporary replica.
public final class CLIRunner: @unchecked Sendable {
    public let dir: URL
    public let db: String

    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var line: String { stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    public init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("fieldbook-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        db = dir.appendingPathComponent("replica.sqlite").path
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    /// The binary next to the test bundle (both are products of the same build).
    public static var binary: URL { product("fieldbook") }

    public static func product(_ name: String) -> URL {
        if name == "fieldbook", let p = ProcessInfo.processInfo.environment["FIELDBOOK_BIN"] { return URL(fileURLWithPath: p) }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: ".build/debug/\(name)")
    }

    /// The passphrase of every replica the tests create (replicas are encrypted by default, as
    /// in the field), with a cheap key derivation so that each command does not pay 0.4 s.
    public static let passphrase = "fieldbook test passphrase"
    public static let encryption = ["FIELDBOOK_PASSPHRASE": passphrase, "FIELDBOOK_KDF_LOGN": "10", "FIELDBOOK_TESTING_WEAK_KDF": "1"]

    @discardableResult
    public func run(_ args: [String], db: String? = nil, env: [String: String] = [:]) throws -> Result {
        try Self.exec(Self.binary, args, env: env.merging(["FIELDBOOK_DB": db ?? self.db].merging(Self.encryption) { a, _ in a }) { a, _ in a })
    }

    /// Runs a product binary to completion.
    public static func exec(_ binary: URL, _ args: [String], env extra: [String: String] = [:]) throws -> Result {
        // The child's output goes to files that a shell opens for it, read once it has exited: the
        // test process holds no pipe (a read interrupted by another child's exit, EINTR, traps in
        // Foundation) and no file handle of its own for it (handles closed by one test while
        // another spawns crashed Process.run).
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("fieldbook-exec-\(UUID().uuidString)")
        let (outURL, errURL) = (base.appendingPathExtension("out"), base.appendingPathExtension("err"))
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let p = try Spawn.start(binary, args, env: extra, stdout: outURL.path, stderr: errURL.path)
        p.waitUntilExit()
        let o = (try? Data(contentsOf: outURL)) ?? Data()
        let e = (try? Data(contentsOf: errURL)) ?? Data()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    public func file(_ name: String, _ contents: String) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The shared fixture of real cases: `../shared/fixtures/kz-cases.csv` beside the clone when
    /// it is there, else the copy in `Tests/Fixtures` (so that a lone fresh clone tests too).
    public static var fixture: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let shared = root.deletingLastPathComponent().appendingPathComponent("shared/fixtures/kz-cases.csv").path
        if FileManager.default.fileExists(atPath: shared) { return shared }
        return root.appendingPathComponent("Tests/Fixtures/kz-cases.csv").path
    }
}
