import AsyncHTTPClient
@preconcurrency import Crypto
import FieldbookModel
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SealedSync

// fieldbook-load: simulated devices against real servers (docs/PERFORMANCE.md, "Scale-out").
//
//   fieldbook-load [--database postgres://…] [--servers 3] [--devices 500] [--seconds 60] [--kill-at 30] [--pause 300-1700] [--json] [--timeline]
//
// --timeline also prints, for each 5 s of the run, the pushes begun in it: rate, p50 and p99.
//
// It also prints where the CPU went: the generator's and the servers' CPU seconds, and how busy
// the whole machine was (all cores, from /proc/stat; -1 elsewhere): on a machine that also runs
// PostgreSQL, a run near 100 % measures the machine, not the servers.
//
// Besides the whole run, the steady state is reported: pushes begun from 5 s after the start (every
// device online, connections made) until the kill.
//
// With --database, --servers processes serve one PostgreSQL database (a fresh, empty one);
// without, one process serves an embedded store in a temporary directory. Halfway (--kill-at),
// server 0 is killed with SIGKILL; with PostgreSQL its devices fail over to the others, with the
// embedded store it is restarted on the same port. At the end a fresh reader pulls everything;
// every device's writes must be there exactly (0 lost), no row more (0 duplicated), and the
// observing devices must hold the same state.

let args = CommandLine.arguments
func option(_ name: String) -> String? { args.firstIndex(of: name).flatMap { $0 + 1 < args.count ? args[$0 + 1] : nil } }
let database = option("--database")
let serverCount = database == nil ? 1 : Int(option("--servers") ?? "3") ?? 3
let deviceCount = Int(option("--devices") ?? "500") ?? 500
let seconds = Double(option("--seconds") ?? "60") ?? 60
let killAt = Double(option("--kill-at") ?? String(seconds / 2)) ?? seconds / 2
let json = args.contains("--json")
/// The pause between a device's syncs (ms, uniform): `--pause 300-1700` (the default).
let pause: ClosedRange<Int> = {
    let parts = (option("--pause") ?? "300-1700").split(separator: "-").compactMap { Int($0) }
    guard parts.count == 2, parts[0] >= 0, parts[1] >= parts[0], parts[1] <= 600_000 else {
        FileHandle.standardError.write(Data("fieldbook-load: --pause wants MIN-MAX in milliseconds (at most 600000), e.g. 300-1700\n".utf8))
        exit(64)
    }
    return parts[0]...parts[1]
}()
/// Devices are spread over regional teams (a token per region): each pulls its region only.
let regionCount = max(1, Int(option("--regions") ?? "50") ?? 50)
let regions = (0..<regionCount).map { "region-\($0)" }

let root = FileManager.default.temporaryDirectory.appendingPathComponent("fieldbook-load-\(UUID().uuidString)").path
try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: root) }
let servers = try Servers(count: serverCount, database: database, root: root)
defer { servers.stopAll() }

var config = HTTPClient.Configuration()
config.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: deviceCount + 50)
config.timeout = .init(connect: .seconds(5), read: .seconds(60))
let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)

// A coordinator delivers each region's key (epoch 1), so the servers take cells sealed under them.
var ring = KeyRing()
var regionKeys: [String: SymmetricKey] = [:]
for r in regions {
    let k = SymmetricKey(size: .bits256)
    regionKeys[r] = k
    ring.add(region: r, epoch: 1, key: k)
}
let coordinatorToken = try servers.token("coordinator", regions: "*", coordinator: true)
func send(_ path: String, method: HTTPMethod, token: String, body: Data) async throws {
    var req = HTTPClientRequest(url: servers.urls[0] + path)
    req.method = method
    req.headers.add(name: "Authorization", value: "Bearer \(token)")
    req.headers.add(name: "Content-Type", value: "application/json")
    req.headers.add(name: SyncProtocol.protocolHeader, value: String(SyncProtocol.version))
    req.headers.add(name: SyncProtocol.schemaHeader, value: String(SyncProtocol.schemaVersion))
    req.body = .bytes(ByteBuffer(bytes: body))
    let r = try await client.execute(req, timeout: .seconds(30))
    let b = try await r.body.collect(upTo: 1 << 20)
    guard r.status == .ok else { throw LoadError("\(path): \(r.status.code) \(String(buffer: b))") }
}
let me = DeviceKeys()
try await send(SyncProtocol.devicePath, method: .PUT, token: coordinatorToken,
               body: try JSONEncoder().encode(DeviceRegistration(agreement: me.publicKeys.agreementBase64, signing: me.publicKeys.signingBase64)))
let wrappedKeys = try regions.map { r in
    WrappedKey(device: "coordinator", region: r, epoch: 1,
               wrapped: Data(try KeyWrap.wrap(regionKeys[r]!, region: r, epoch: 1, device: "coordinator", to: me.publicKeys, from: me)).base64EncodedString(),
               sender: "coordinator", senderAgreement: me.publicKeys.agreementBase64, senderSigning: me.publicKeys.signingBase64)
}
try await send(SyncProtocol.keysPath, method: .POST, token: coordinatorToken,
               body: try JSONEncoder().encode(KeyUploadRequest(keys: wrappedKeys, approve: ["coordinator"])))

// Device tokens: one per region (a token's sites are its devices').
let tokens = try regions.map { try servers.token("team-\($0)", regions: $0) }
if !json { print("\(deviceCount) devices in \(regionCount) regions, \(serverCount) server(s) on \(database == nil ? "the embedded store" : "PostgreSQL"), \(Int(seconds)) s, server 0 killed at \(Int(killAt)) s, pauses \(pause.lowerBound)–\(pause.upperBound) ms") }

let started = Date()
let machineAtStart = CPUUsage.machine()
let generatorAtStart = CPUUsage.seconds(children: false)
let deadline = started.addingTimeInterval(seconds)
let urls = servers.urls
let outcomes = await withTaskGroup(of: Device.Outcome.self) { group -> [Device.Outcome] in
    for i in 0..<deviceCount {
        let device = Device(index: i, token: tokens[i % regionCount], region: regions[i % regionCount], urls: urls, client: client, ring: ring,
                            observer: i < 5, pause: pause)
        group.addTask {
            try? await Task.sleep(for: .milliseconds(Int.random(in: 0...1000)))  // devices come online over a second
            return await device.run(until: deadline, seed: UInt64(i + 1))
        }
    }
    group.addTask {
        try? await Task.sleep(for: .seconds(killAt))
        servers.kill(0)
        if serverCount == 1 {
            try? await Task.sleep(for: .seconds(1))
            try? servers.start(0)
        }
        return Device.Outcome()
    }
    var all: [Device.Outcome] = []
    for await o in group { all.append(o) }
    return all
}
let elapsed = Date().timeIntervalSince(started)
let machineAtEnd = CPUUsage.machine()
let generatorCPU = CPUUsage.seconds(children: false) - generatorAtStart
let machineBusy: Double = {
    guard let a = machineAtStart, let b = machineAtEnd, b.all > a.all else { return -1 }
    return ((b.busy - a.busy) / (b.all - a.all) * 100).rounded()
}()

// A fresh reader pulls everything from a server that is up.
var state: [String: [String: Device.Version]] = [:]
var cursor: String? = nil
let reader = servers.urls[serverCount == 1 ? 0 : 1]
while true {
    var path = SyncProtocol.pullPath + "?limit=50000"
    if let cursor { path += "&cursor=\(cursor)" }
    var req = HTTPClientRequest(url: reader + path)
    req.headers.add(name: "Authorization", value: "Bearer \(coordinatorToken)")
    req.headers.add(name: "Accept", value: SyncProtocol.binaryMediaType)
    req.headers.add(name: SyncProtocol.protocolHeader, value: String(SyncProtocol.version))
    req.headers.add(name: SyncProtocol.schemaHeader, value: String(SyncProtocol.schemaVersion))
    let r = try await client.execute(req, timeout: .seconds(120))
    let body = try await r.body.collect(upTo: 1 << 30)
    guard r.status == .ok else { throw LoadError("final pull: \(r.status.code)") }
    let page = try PullResponse(binary: Array(body.readableBytesView))
    Device.merge(try page.changes.changeset(), into: &state)
    cursor = page.cursor
    if !page.more { break }
}
try await client.shutdown()
// The servers' CPU time counts once they are reaped (the token commands' too, a fraction of a second).
servers.stopAll()
let serversCPU = CPUUsage.seconds(children: true)

var expected: [String: [String: Device.Version]] = [:]
for o in outcomes { for (row, fields) in o.written { expected[row] = fields } }
var lost = 0
for (row, fields) in expected { for (f, v) in fields where state[row]?[f] != v { lost += 1 } }
let extra = state.keys.filter { expected[$0] == nil }.count
let observersAgree = outcomes.compactMap(\.held).allSatisfy { held in
    // An observer's last pull may precede others' last pushes: it must hold nothing the store lacks.
    held.allSatisfy { row, fields in fields.allSatisfy { f, v in state[row]?[f].map { ($0.hlc, $0.site) >= (v.hlc, v.site) } ?? false } }
}
func hash(_ s: [String: [String: Device.Version]]) -> String {
    var h = SHA256()
    for row in s.keys.sorted() { for f in s[row]!.keys.sorted() { let v = s[row]![f]!; h.update(data: Data("\(row)|\(f)|\(v.hlc)|\(v.site)\n".utf8)) } }
    return h.finalize().map { String(format: "%02x", $0) }.joined().prefix(16).description
}
func percentile(_ xs: [Double], _ p: Double) -> Double {
    guard !xs.isEmpty else { return 0 }
    let s = xs.sorted()
    return s[min(s.count - 1, Int(Double(s.count - 1) * p))] * 1000
}
let pushes = outcomes.reduce(0) { $0 + $1.pushes }
let changes = outcomes.reduce(0) { $0 + $1.changes }
let pushL = outcomes.flatMap(\.pushLatencies), pullL = outcomes.flatMap(\.pullLatencies)
// The same for the steady state: the pushes begun from 5 s after the start (when every device has
// come online, opened its connections and the servers' pools theirs) until the kill.
let killTime = started.timeIntervalSince1970 + killAt, warm = started.timeIntervalSince1970 + min(5, killAt)
let pushSteady = outcomes.flatMap { o in zip(o.pushStarts, o.pushLatencies).filter { $0.0 >= warm && $0.0 < killTime }.map(\.1) }
let result: [String: Any] = [
    "store": database == nil ? "embedded" : "postgres", "servers": serverCount, "devices": deviceCount, "regions": regionCount, "pause_ms": "\(pause.lowerBound)-\(pause.upperBound)", "seconds": (elapsed * 10).rounded() / 10,
    "pushes": pushes, "pushes_per_s": (Double(pushes) / elapsed).rounded(), "changes_per_s": (Double(changes) / elapsed).rounded(),
    "push_p50_ms": percentile(pushL, 0.5).rounded(), "push_p99_ms": percentile(pushL, 0.99).rounded(),
    "steady_pushes_per_s": (Double(pushSteady.count) / max(0.001, killAt - min(5, killAt))).rounded(),
    "steady_push_p50_ms": percentile(pushSteady, 0.5).rounded(), "steady_push_p99_ms": percentile(pushSteady, 0.99).rounded(),
    "pull_p50_ms": percentile(pullL, 0.5).rounded(), "pull_p99_ms": percentile(pullL, 0.99).rounded(),
    "failovers": outcomes.reduce(0) { $0 + $1.failovers }, "pushes_given_up": outcomes.reduce(0) { $0 + $1.gaveUp }, "rows": state.count, "lost": lost, "duplicated": extra,
    "cpu_generator_s": generatorCPU.rounded(), "cpu_servers_s": serversCPU.rounded(),
    "machine_busy_pct": machineBusy,
    "state_hash_store": hash(state), "state_hash_expected": hash(expected), "observers_agree": observersAgree,
]
var errors: [String: Int] = [:]
for o in outcomes { for (k, v) in o.errors { errors[k, default: 0] += v } }
if !json { for (k, v) in errors.sorted(by: { $0.value > $1.value }).prefix(8) { print("  \(v)× \(k)") } }
if args.contains("--timeline") && !json {
    let begun = outcomes.flatMap { zip($0.pushStarts, $0.pushLatencies) }
    for window in stride(from: 0.0, to: elapsed, by: 5) {
        let from = started.timeIntervalSince1970 + window
        let inWindow = begun.filter { $0.0 >= from && $0.0 < from + 5 }.map(\.1)
        print(String(format: "  %3.0f–%3.0f s: %4.0f pushes/s, p50 %5.0f ms, p99 %5.0f ms", window, window + 5,
                     Double(inWindow.count) / 5, percentile(inWindow, 0.5), percentile(inWindow, 0.99)))
    }
}
if json {
    print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
} else {
    for k in result.keys.sorted() { print("\(k): \(result[k]!)") }
}
if lost > 0 || extra > 0 || !observersAgree || result["pushes_given_up"] as? Int != 0 || hash(state) != hash(expected) {
    servers.stopAll()  // exit() skips the defer above: no server is left running
    exit(1)
}
