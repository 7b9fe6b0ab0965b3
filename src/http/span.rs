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
        // Recorded once the request is routed (`http::resource`); a path no route matches
        // leaves it out.
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = Empty,
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

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{test, web, App, HttpResponse};
    use std::sync::{Arc, Mutex};

    /// Log output kept in memory.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[actix_web::test]
    async fn a_line_logged_by_a_handler_names_the_route_it_was_routed_to() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .service(super::super::resource(
                    "/v1/things/{id}",
                    vec![(
                        actix_web::http::Method::GET,
                        web::to(|| async {
                            tracing::info!("inside the handler");
                            HttpResponse::Ok().finish()
                        }),
                    )],
                ))
                .wrap(tracing_actix_web::TracingLogger::<RequestSpan>::new()),
        )
        .await;
        let res = test::call_service(
            &app,
            test::TestRequest::get().uri("/v1/things/42").to_request(),
        )
        .await;
        assert_eq!(res.status(), 200);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("inside the handler"))
            .unwrap_or_else(|| panic!("no line from the handler in {text:?}"));
        assert!(line.contains("http.route=\"/v1/things/{id}\""), "{line}");
        assert!(line.contains("http.method=GET"), "{line}");
    }
}
