// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "Fieldbook",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fieldbook", targets: ["fieldbook"]),
        .executable(name: "fieldbook-server", targets: ["fieldbook-server"]),
        .executable(name: "fieldbook-bench", targets: ["fieldbook-bench"]),
        .executable(name: "fieldbook-load", targets: ["fieldbook-load"]),
        .library(name: "FieldbookModel", targets: ["FieldbookModel"]),
        .library(name: "SyncCore", targets: ["SyncCore"]),
        .library(name: "ReplicaStore", targets: ["ReplicaStore"]),
        .library(name: "SealedSync", targets: ["SealedSync"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // CSV parsing and writing (RFC 4180 quoting, embedded line breaks): see commit message.
        .package(url: "https://github.com/yaslab/CSV.swift", from: "2.5.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // TLS for the server (through Hummingbird) and certificate pinning on the client.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // gzip of request and response bodies (zlib through NIO ByteBuffers).
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        // The server's /metrics in the Prometheus text format (counters, histograms, rendering).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // The PostgreSQL store for several servers on one database (PostgresClient: a pool run as a service).
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // No core files for either binary (RLIMIT_CORE 0, PR_SET_DUMPABLE 0): prctl is variadic, so C.
        .target(name: "CProcessHardening", path: "Sources/CProcessHardening"),
        // Shared model: records, vocabularies, fuzzy dates, validation, wire messages. Foundation only.
        .target(name: "FieldbookModel", path: "Sources/FieldbookModel"),
        // Pure sync core: hybrid logical clock, LWW resolution, causal length. No I/O.
        .target(name: "SyncCore", dependencies: ["FieldbookModel"], path: "Sources/SyncCore"),
        // Sealed sync: cells sealed under region keys, device keys, key wrapping (swift-crypto only).
        .target(
            name: "SealedSync",
            dependencies: [
                "FieldbookModel",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "Sources/SealedSync"
        ),
        // TLS: server configuration from PEM files, key pins (SHA-256 of the public key), pinned fetch.
        .target(
            name: "FieldbookTLS",
            dependencies: [
                "FieldbookModel",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Sources/FieldbookTLS"
        ),
        // The SQLite replica (GRDB): schema, capture of local writes, applying changesets, history.
        .target(
            name: "ReplicaStore",
            dependencies: [
                "FieldbookModel", "SyncCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "Sources/ReplicaStore"
        ),
        // The domain on top of the replica: records, import/export (CSV, JSON).
        .target(
            name: "FieldbookKit",
            dependencies: [
                "FieldbookModel", "ReplicaStore",
                .product(name: "CSV", package: "CSV.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/FieldbookKit"
        ),
        // The sync server: store protocol, SQLite store, tokens, HTTP routes (Hummingbird).
        .target(
            name: "SyncServer",
            dependencies: [
                "FieldbookModel", "SyncCore", "ReplicaStore", "FieldbookTLS",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/SyncServer",
            resources: [.copy("openapi.json")]
        ),
        // The server's PostgreSQL store (ServerStore over PostgresNIO), for scale-out.
        .target(
            name: "PostgresStore",
            dependencies: [
                "FieldbookModel", "SyncCore", "SyncServer",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/PostgresStore"
        ),
        // The sync client: HTTP transport (AsyncHTTPClient) and the engine that runs a sync.
        .target(
            name: "SyncClient",
            dependencies: [
                "FieldbookModel", "SyncCore", "ReplicaStore", "SealedSync", "FieldbookTLS",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/SyncClient"
        ),
        .executableTarget(
            name: "fieldbook",
            dependencies: [
                "CProcessHardening", "FieldbookTLS", "FieldbookModel", "ReplicaStore", "FieldbookKit", "SyncClient", "SealedSync",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Client"
        ),
        .executableTarget(
            name: "fieldbook-server",
            dependencies: [
                "CProcessHardening", "FieldbookModel", "SyncServer", "ReplicaStore", "FieldbookTLS", "SealedSync", "PostgresStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Server"
        ),
        .executableTarget(
            name: "fieldbook-bench",
            dependencies: [
                "FieldbookModel", "SyncCore", "ReplicaStore", "FieldbookKit", "SyncClient", "SealedSync",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Bench"
        ),
        // The load test (release mode): simulated devices against several servers on one database.
        .executableTarget(
            name: "fieldbook-load",
            dependencies: [
                "FieldbookModel", "SealedSync", "SyncCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "LoadTest"
        ),
        .testTarget(name: "FieldbookModelTests", dependencies: ["FieldbookModel", "SyncCore"]),
        .testTarget(name: "SyncCoreTests", dependencies: ["SyncCore", "FieldbookModel"]),
        .testTarget(name: "SealedSyncTests", dependencies: ["SealedSync", "FieldbookModel", "SyncCore",
                                                            .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(
            name: "ReplicaStoreTests",
            dependencies: ["ReplicaStore", "FieldbookKit", "FieldbookModel", "SyncCore",
                           .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .target(name: "FieldbookTestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "CLITests", dependencies: ["fieldbook", "FieldbookTestSupport"]),
        .testTarget(
            name: "SyncServerTests",
            dependencies: [
                "SyncServer", "FieldbookModel", "ReplicaStore", "SealedSync", "fieldbook", "fieldbook-server", "FieldbookTestSupport", "PostgresStore", "SyncCore",
                "CProcessHardening",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "CSV", package: "CSV.swift"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
