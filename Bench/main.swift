import Foundation

/// fieldbook-bench: release-mode benchmark of the sync engine against plain SQLite in the same run.
/// Usage: swift run -c release fieldbook-bench [--json] [--runs N] [--no-sync | --sync-only] [--seal-micro]
let args = CommandLine.arguments
let json = args.contains("--json")
let runs = args.firstIndex(of: "--runs").flatMap { $0 + 1 < args.count ? Int(args[$0 + 1]) : nil }.map { max(1, $0) } ?? 3

func log(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

if args.contains("--seal-micro") {
    try SealMicro.run()
    exit(0)
}
if args.contains("--dedup") {
    let n = args.firstIndex(of: "--dedup").flatMap { $0 + 1 < args.count ? Int(args[$0 + 1]) : nil } ?? 100_000
    let f = DedupPhase().run(count: max(100, n))
    let out: [String: Any] = ["persons": f.persons, "persons_dedup_100k_s": f.seconds, "dedup_precision": f.precision, "dedup_recall": f.recall,
                              "dedup_true_pairs": f.truePairs, "dedup_found": f.found]
    print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
    exit(0)
}
let skipSync = args.contains("--no-sync")
let syncOnly = args.contains("--sync-only")
let workloads = syncOnly ? [] : [Workload.standard(), Workload.incidents()]
var results: [(Workload, [Figures])] = []
for w in workloads {
    if let e = w.expectedHash, !json { print("Expected state hash for \(w.name): \(e)") }
    var figs: [Figures] = []
    for r in 0...runs {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fieldbook-bench-\(UUID().uuidString)")
        let f = try Runner(workload: w, dir: dir).run()
        if r > 0 { figs.append(f) }  // run 0 is the warm-up
        log("\(w.name): run \(r) done\(r == 0 ? " (warm-up)" : "")")
    }
    results.append((w, figs))
}
var seal: SealPhase.Figures? = nil
if !syncOnly {
    var sealRuns: [SealPhase.Figures] = []
    for r in 0...runs {
        let f = try SealPhase().run()
        if r > 0 { sealRuns.append(f) }
    }
    // The run with the median sealing time.
    seal = sealRuns.sorted { $0.sealMs < $1.sealMs }[sealRuns.count / 2]
    log("sealing: done")
}
var dedup: DedupPhase.Figures? = nil
if !syncOnly {
    dedup = DedupPhase().run()
    log("persons duplicates: done")
}
var sync: SyncBench.Result? = nil
if !skipSync {
    log("sync benchmark: real fieldbook-server on 127.0.0.1 …")
    let binDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    sync = try await SyncBench(dir: FileManager.default.temporaryDirectory.appendingPathComponent("fieldbook-syncbench-\(UUID().uuidString)"),
                               binDir: binDir).run()
}
Report.print(results, sync: sync, seal: seal, dedup: dedup, json: json)
let ok = results.allSatisfy { w, figs in figs.allSatisfy { $0.hashA == $0.hashB && $0.hashA == $0.hashPlain && $0.encrypted.hash == $0.hashPlain && (w.expectedHash == nil || $0.hashA == w.expectedHash) } }
if !ok {
    log("STATE HASH MISMATCH")
    exit(1)
}
