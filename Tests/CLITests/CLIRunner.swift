import Foundation

/// Runs the real `fieldbook` binary against a temporary replica.
final class CLIRunner: @unchecked Sendable {
    let dir: URL
    let db: String

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("fieldbook-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        db = dir.appendingPathComponent("replica.sqlite").path
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    /// The binary next to the test bundle (both are products of the same build).
    static var binary: URL {
        if let p = ProcessInfo.processInfo.environment["FIELDBOOK_BIN"] { return URL(fileURLWithPath: p) }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent("fieldbook")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: ".build/debug/fieldbook")
    }

    @discardableResult
    func run(_ args: [String], db: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["FIELDBOOK_DB"] = db ?? self.db
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func file(_ name: String, _ contents: String) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static var fixture: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.deletingLastPathComponent().appendingPathComponent("shared/fixtures/kz-cases.csv").path
    }
}
