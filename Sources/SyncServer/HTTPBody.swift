import CompressNIO
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Reading and writing bodies (JSON, or the binary form of docs/PROTOCOL.md), gzip-compressed when the peer says so.
enum HTTPBody {
    static let contentEncoding = HTTPField.Name("Content-Encoding")!
    static let acceptEncoding = HTTPField.Name("Accept-Encoding")!

    /// The request body, decompressed if it is gzip; at most `maxBytes` either way.
    static func read(_ request: Request, maxBytes: Int) async throws -> Data {
        var buffer = try await request.body.collect(upTo: maxBytes)
        if let enc = request.headers[contentEncoding]?.lowercased(), enc != "identity" {
            guard enc == "gzip" else {
                throw ServerError(.unsupportedMediaType, "unsupported_encoding", "Content-Encoding \"\(enc)\" is not supported; send gzip or none")
            }
            do {
                buffer = try buffer.decompress(with: .gzip(), maxSize: maxBytes)
            } catch let e as CompressNIOError where e == .bufferOverflow {
                throw ServerError(.contentTooLarge, "too_large", "the decompressed body is larger than \(maxBytes) bytes; send smaller batches")
            } catch {
                throw ServerError.badRequest("malformed", "the body is not valid gzip: \(error)")
            }
        }
        return Data(buffer.readableBytesView)
    }

    /// The request's media type (Content-Type without parameters, lower-cased), if it sent one.
    static func mediaType(of request: Request) -> String? {
        guard let ct = request.headers[.contentType] else { return nil }
        return ct.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
    }

    /// Whether the request's Accept header lists `mediaType`.
    static func accepts(_ request: Request, _ mediaType: String) -> Bool {
        guard let accept = request.headers[.accept] else { return false }
        return accept.split(separator: ",").contains {
            $0.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() == mediaType
        }
    }

    /// A JSON response, gzip-compressed when the request accepts gzip and the body is large enough to gain.
    static func json<T: Encodable>(_ value: T, for request: Request, status: HTTPResponse.Status = .ok) throws -> Response {
        try bytes(try JSONEncoder().encode(value), contentType: "application/json", for: request, status: status)
    }

    /// A response with the given body, gzip-compressed when the request accepts gzip and the body is large enough to gain.
    static func bytes(_ data: some Collection<UInt8>, contentType: String, for request: Request,
                      status: HTTPResponse.Status = .ok) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        var buffer = ByteBuffer(bytes: data)
        if data.count > 1024, request.headers[acceptEncoding]?.lowercased().contains("gzip") == true {
            buffer = try buffer.compress(with: .gzip(configuration: .init(compressionLevel: 1)))
            headers[contentEncoding] = "gzip"
        }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: buffer))
    }
}
