import Foundation

/// `fieldbook-server serve` processes for the load test, on 127.0.0.1 and free ports.
final class Servers: @unchecked Sendable {
    struct Server {
        var process: Process?
        var port: Int
        var data: String
    }

    let binary: URL
    let database: String?
    let root: String
    private(set) var servers: [Server] = []

    init(count: Int, database: String?, root: String) throws {
        binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fieldbook-server")
        self.database = database
        self.root = root
        for i in 0..<count {
            let data = (root as NSString).appendingPathComponent("server\(i)")
            servers.append(Server(process: nil, port: 0, data: data))
            try start(i)
        }
    }

    var urls: [String] { servers.map { "http://127.0.0.1:\($0.port)" } }

    var databaseArguments: [String] { database.map { ["--database", $0] } ?? [] }

    func start(_ i: Int) throws {
        try FileManager.default.createDirectory(atPath: servers[i].data, withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = binary
        p.arguments = ["serve", "--data", servers[i].data, "--port", String(servers[i].port), "--log-level", "error"] + databaseArguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        var text = ""
        while !text.contains("\n") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let colon = text.split(separator: "\n").first?.lastIndex(of: ":"),
              let port = Int(text.split(separator: "\n").first![text.index(after: colon)...].prefix { $0.isNumber }) else {
            throw LoadError("server \(i) did not start: \(text)")
        }
        servers[i].process = p
        servers[i].port = port
    }

    func kill(_ i: Int) {
        guard let p = servers[i].process else { return }
        Foundation.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        servers[i].process = nil
    }

    func stopAll() {
        for (i, s) in servers.enumerated() where s.process != nil {
            Foundation.kill(s.process!.processIdentifier, SIGTERM)
            s.process!.waitUntilExit()
            servers[i].process = nil
        }
    }

    func token(_ name: String, regions: String, coordinator: Bool = false) throws -> String {
        let p = Process()
        p.executableURL = binary
        p.arguments = ["token", "create", "--data", servers[0].data, "--name", name, "--regions", regions] + (coordinator ? ["--coordinator"] : []) + databaseArguments
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw LoadError("token create failed") }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

struct LoadError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
