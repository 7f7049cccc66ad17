import HTTPTypes
import Hummingbird

/// The outermost middleware: times every request, counts it by route, method and status
/// (`ServerMetrics`), and tells the client the request's id (`X-Request-Id`), which the
/// server's log lines carry as `hb.request.id`, so that a device's report can be found in the log.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics
    static var requestIDHeader: HTTPField.Name { HTTPField.Name("X-Request-Id")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let route = { context.endpointPath ?? "unmatched" }
        do {
            var response = try await next(request, context)
            response.headers[Self.requestIDHeader] = context.id
            metrics.request(route: route(), method: request.method.rawValue, status: Int(response.status.code),
                            duration: ContinuousClock.now - start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.request(route: route(), method: request.method.rawValue, status: Int(status), duration: ContinuousClock.now - start)
            throw error
        }
    }
}
