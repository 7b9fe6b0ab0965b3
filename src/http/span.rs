//! The span every request runs in. It carries what a report needs to find its log lines — the
//! method, the route, the request id (repeated in `x-request-id`) and, at the end, the status and
//! any error — and nothing more: `tracing-actix-web`'s default span formats a dozen fields (host,
//! scheme, client address, user agent, OpenTelemetry fields…) on every request, and a WebSocket
//! keeps its span, formatted fields and all, for its whole life. A WebSocket upgrade gets no span
//! at all.
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::field::Empty;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

pub struct RequestSpan;

/// The WebSocket endpoint.
pub const LIVE_PATH: &str = "/v1/live";

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        // A live connection's body is polled for every frame it is sent, and the span entered
        // each time; nothing is logged inside it (the session runs in its own task). It gets
        // none: no enter and exit per frame, nothing kept per connection.
        if request.path() == LIVE_PATH {
            return Span::none();
        }
        let id = request.extensions().get::<RequestId>().copied();
        let route = request.match_pattern();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = route.as_deref().unwrap_or("(no route)"),
            request_id = id.map(tracing::field::display),
            http.status_code = Empty,
            exception.message = Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(res) => (res.status(), res.response().error().map(|e| e.to_string())),
            Err(e) => (e.as_response_error().status_code(), Some(e.to_string())),
        };
        span.record("http.status_code", status.as_u16());
        if let Some(e) = error {
            span.record("exception.message", e);
        }
    }
}
