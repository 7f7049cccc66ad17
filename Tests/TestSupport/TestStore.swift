import Foundation
import Testing

/// The server stores a contract test runs against: the embedded one always, PostgreSQL when
/// `FIELDBOOK_TEST_DATABASE_URL` names a cluster the tests may create databases in (e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`; `.ci/run` starts one). Each server gets a
/// database of its own.
public enum TestStore: String, Sendable, CustomStringConvertible, CaseIterable {
    case embedded
    case postgres

    public var description: String { rawValue }

    /// The admin URL of the test cluster, if any.
    public static var adminURL: String? {
        ProcessInfo.processInfo.environment["FIELDBOOK_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The stores to run against here.
    public static var available: [TestStore] { adminURL == nil ? [.embedded] : [.embedded, .postgres] }

    /// The comment a PostgreSQL-only test is skipped with (`.enabled(if:)`), so that a run
    /// without a database reports it skipped — never passed.
    public static let postgresSkipReason: Comment = "needs PostgreSQL: set FIELDBOOK_TEST_DATABASE_URL=postgres://USER@127.0.0.1:PORT/postgres (.ci/run starts one)"

    /// Why PostgreSQL tests did not run, or nil when they do.
    public static var skipped: String? {
        adminURL == nil
            ? "PostgreSQL store tests skipped: set FIELDBOOK_TEST_DATABASE_URL=postgres://USER@127.0.0.1:PORT/postgres (a cluster the tests may create databases in; .ci/run starts one)"
            : nil
    }

    /// A new, empty database for one server (PostgreSQL), or nil (embedded).
    public func newDatabase() throws -> String? {
        guard self == .postgres else { return nil }
        return try Self.createDatabase()
    }

    /// Creates a database named `fbt_…` in the test cluster and returns its URL.
    public static func createDatabase() throws -> String {
        guard let admin = adminURL, var url = URLComponents(string: admin) else {
            throw NSError(domain: "TestStore", code: 1, userInfo: [NSLocalizedDescriptionKey: skipped ?? "no test database"])
        }
        let name = "fbt_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        let r = try CLIRunner.exec(URL(fileURLWithPath: "/usr/bin/psql"), [admin, "-v", "ON_ERROR_STOP=1", "-q", "-c", "CREATE DATABASE \(name)"])
        guard r.status == 0 else {
            throw NSError(domain: "TestStore", code: 2, userInfo: [NSLocalizedDescriptionKey: "psql CREATE DATABASE: \(r.stderr)"])
        }
        url.path = "/" + name
        return url.string!
    }
}
