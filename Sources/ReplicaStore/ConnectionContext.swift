import GRDB

/// What lives as long as the replica's one SQLite connection: the capture buffer that
/// `fb_setclock` fills, and the statements the writer prepared (kept across transactions).
/// Used only inside the database queue, which serializes all access.
final class ConnectionContext: @unchecked Sendable {
    let capture = ClockCapture()
    var statements: [ReplicaWriter.StatementKey: RawStatement] = [:]
}
