import Hummingbird
import Logging
import NIOCore

/// Builds the server application: the routes over a store, bound to `host:port`.
public enum ServerApplication {
    /// - Parameter onListening: called with the bound port once the server accepts connections
    ///   (port 0 binds a free port).
    public static func make(
        store: any ServerStore, configuration: ServerConfiguration, host: String, port: Int, logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let routes = SyncRoutes(store: store, configuration: configuration)
        return Application(
            router: routes.router(),
            configuration: .init(address: .hostname(host, port: port), serverName: "fieldbook-server"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }
}
