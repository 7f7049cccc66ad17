import Prometheus

/// What the server counts, in the Prometheus text format (`GET /metrics`, docs/PROTOCOL.md):
/// requests by route, method and status; request durations by route; changes pushed, pulled and
/// held. One registry per server (no process-wide metrics system), so tests and several servers
/// in one process do not share counts.
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    /// Histogram buckets for request durations (seconds): 1 ms to 10 s.
    static let buckets: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                                      .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10)]
    let pushed: Counter
    let pulled: Counter
    let held: Counter

    public init() {
        pushed = registry.makeCounter(descriptor: .init(namespace: "fieldbook", metricName: "changes_pushed", unitName: "total",
                                                        helpText: "Changes in accepted pushes (applied, or ignored as already stored)"))
        pulled = registry.makeCounter(descriptor: .init(namespace: "fieldbook", metricName: "changes_pulled", unitName: "total",
                                                        helpText: "Changes sent in pull pages"))
        held = registry.makeCounter(descriptor: .init(namespace: "fieldbook", metricName: "changes_held", unitName: "total",
                                                      helpText: "Row changes held in quarantine (clock too far ahead)"))
    }

    /// Records one finished request. `route` is the matched route's path (never the request's
    /// own path, whose query or id a client chooses).
    func request(route: String, method: String, status: Int, duration: Duration) {
        registry.makeCounter(descriptor: .init(namespace: "fieldbook", metricName: "http_requests", unitName: "total",
                                               helpText: "HTTP requests by route, method and status"),
                             labels: [("route", route), ("method", method), ("status", String(status))]).increment()
        registry.makeDurationHistogram(descriptor: .init(namespace: "fieldbook", metricName: "http_request_duration", unitName: "seconds",
                                                         helpText: "HTTP request durations by route"),
                                       labels: [("route", route)], buckets: Self.buckets).record(duration)
    }

    /// Records how long a request waited for a database connection (PostgreSQL store).
    public func storeWait(_ duration: Duration) {
        registry.makeDurationHistogram(descriptor: .init(namespace: "fieldbook", metricName: "store_connection_wait", unitName: "seconds",
                                                         helpText: "Time a request waited for a database connection from the pool"),
                                       labels: [], buckets: Self.buckets).record(duration)
    }

    /// Counts a request refused because no database connection came in time.
    public func storeWaitTimedOut() {
        registry.makeCounter(descriptor: .init(namespace: "fieldbook", metricName: "store_connection_timeouts", unitName: "total",
                                               helpText: "Requests answered 503 because no database connection came in time")).increment()
    }

    /// Counts a pull answered without committed changes that an older transaction, still
    /// running past the wait, held back (PostgreSQL store).
    public func pullHeldBack() {
        registry.makeCounter(descriptor: .init(namespace: "fieldbook", metricName: "pulls_held_back", unitName: "total",
                                               helpText: "Pulls answered without committed changes an older running transaction held back")).increment()
    }

    /// Counts an optimistic push made again because what it read changed before it wrote
    /// (PostgreSQL store).
    public func pushRetried() {
        registry.makeCounter(descriptor: .init(namespace: "fieldbook", metricName: "push_retries", unitName: "total",
                                               helpText: "Pushes read again because another writer changed what they read first")).increment()
    }

    public func text() -> String { registry.emitToString() }
}
