import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL

/// Builds the server application: the routes over a store, bound to `host:port`.
public enum ServerApplication {
    /// - Parameter onListening: called with the bound port once the server accepts connections
    ///   (port 0 binds a free port).
    ///   - tls: when given, HTTPS only (`FieldbookTLS.TLSPin.serverConfiguration`).
    public static func make(
        store: any ServerStore, configuration: ServerConfiguration, host: String, port: Int, logger: Logger,
        tls: TLSConfiguration? = nil, metrics: ServerMetrics = ServerMetrics(),
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let routes = SyncRoutes(store: store, configuration: configuration, metrics: metrics)
        return Application(
            router: routes.router(),
            server: try tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
            // No `Server` header: a scan must not single out a Fieldbook server by its answers.
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }
}
