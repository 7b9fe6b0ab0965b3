//! `GET /openapi.json`: the OpenAPI 3.1 document of the HTTP API, generated from the handlers'
//! annotations and the wire types, plus every problem each operation can answer.
use super::{calendar, dto, ops, reservations, restaurants, socket, waitlist};
use crate::wire;
use once_cell::sync::Lazy;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::OpenApi;

/// The optional `Idempotency-Key` header of holds, confirms and walk-ins.
#[derive(OpenApi)]
#[openapi(
    info(title = "tablecast", description = "Real-time restaurant reservations: availability, \
        holds and bookings over HTTP; a waitlist with exclusive offers; live updates on `/v1/live` (see `/asyncapi.json`)."),
    paths(
        restaurants::create, restaurants::list, restaurants::get, restaurants::patch,
        restaurants::put_table, restaurants::delete_table, restaurants::availability,
        restaurants::hold, restaurants::staff_list, restaurants::walk_in,
        reservations::confirm, reservations::get, reservations::delete, reservations::patch,
        calendar::calendar,
        waitlist::join, waitlist::get, waitlist::delete, waitlist::staff_list,
        socket::endpoint, ops::healthz, ops::readyz, ops::metrics, openapi, asyncapi,
    ),
    components(schemas(
        dto::RestaurantInput, dto::RestaurantPatchInput, dto::TableInput, dto::HoursInput,
        dto::TurnRuleInput, dto::ConfirmInput, dto::GuestInput, dto::StatusInput,
        dto::WalkInInput, dto::CombinationInput, dto::PacingInput, wire::HoldInput,
        dto::JoinInput,
        wire::Problem, wire::CombinationDoc, wire::PacingDoc,
    )),
    modifiers(&BearerAuth, &Problems)
)]
pub struct ApiDoc;

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: Lazy<utoipa::openapi::OpenApi> = Lazy::new(ApiDoc::openapi);
    &DOC
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every problem status each operation can answer, by `operationId`. `405` is for methods a
/// path does not list (with `Allow`), and `404` for paths not listed at all: neither is here.
pub const PROBLEMS: &[(&str, &[u16])] = &[
    ("create_restaurant", &[400, 401, 403, 413, 415, 422, 503]),
    ("list_restaurants", &[503]),
    ("get_restaurant", &[400, 404, 503]),
    (
        "patch_restaurant",
        &[400, 401, 403, 404, 409, 413, 415, 422, 503],
    ),
    ("put_table", &[400, 401, 403, 404, 409, 413, 415, 422, 503]),
    ("delete_table", &[400, 401, 403, 404, 409, 503]),
    ("availability", &[400, 404, 422, 503]),
    ("hold", &[400, 404, 409, 413, 415, 422, 429, 503]),
    ("staff_list", &[400, 401, 403, 404, 503]),
    ("walk_in", &[400, 401, 403, 404, 409, 413, 415, 422, 503]),
    (
        "confirm",
        &[400, 401, 403, 404, 409, 410, 413, 415, 422, 503],
    ),
    ("get_reservation", &[400, 401, 403, 404, 503]),
    ("reservation_calendar", &[400, 401, 403, 404, 503]),
    ("delete_reservation", &[400, 401, 403, 404, 409, 503]),
    (
        "patch_reservation",
        &[400, 401, 403, 404, 409, 413, 415, 422, 503],
    ),
    ("join_waitlist", &[400, 404, 413, 415, 422, 429, 503]),
    ("get_waitlist_entry", &[400, 401, 403, 404, 503]),
    ("leave_waitlist", &[400, 401, 403, 404, 503]),
    ("staff_waitlist", &[400, 401, 403, 404, 503]),
    ("live", &[400, 403, 429, 503]),
    ("healthz", &[]),
    ("readyz", &[503]),
    ("metrics", &[]),
    ("openapi", &[]),
    ("asyncapi", &[]),
];

fn problem_response(operation: &str, status: u16) -> Response {
    let description = match (operation, status) {
        ("live", 400) => "`bad-request`: not a WebSocket upgrade (one for a version other than 13 is answered with `Sec-WebSocket-Version: 13`)",
        ("live", 403) => "`forbidden`: the `Origin` is not one of `--allowed-origins`",
        ("live", 429) => "`rate-limited` (with `limit`: `connections`): this client has as many sockets open on this instance as it may",
        (_, 400) => "`bad-request`: the request could not be read as written (path, query, header or body syntax)",
        (_, 401) => "`unauthorized`: no bearer token, or an unknown one",
        (_, 403) => "`forbidden`: the token has no rights to this resource",
        (_, 404) => "`not-found`: no such restaurant, table, combination or reservation",
        (_, 409) => "`slot-unavailable` (with `alternatives`, and `reason`: `table` when no fitting table or combination is free, `pacing` when the time's pacing window is full), `invalid-transition` or `conflict`",
        (_, 410) => "`hold-expired`: the hold's `expires_at` has passed",
        (_, 413) => "`payload-too-large`: a body over 64 KiB",
        (_, 415) => "`unsupported-media-type`: a body that is not `application/json`",
        (_, 422) => "`validation` (with `errors`) or `idempotency-conflict`",
        (_, 429) => "`rate-limited` (with `limit`: `live-holds` or `hold-rate`): this client is over a per-client limit",
        (_, 503) => "`unavailable`: the store is unreachable (or, for `/readyz`, draining or the bus down)",
        _ => "a problem",
    };
    let mut r = ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    let text = |d: &str| {
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(d))
            .build()
    };
    match status {
        401 => r = r.header("WWW-Authenticate", text("`Bearer`")),
        503 => r = r.header("Retry-After", text("seconds to wait: `1`")),
        429 => {
            r = r.header(
                "Retry-After",
                text("seconds until the limit lets this client in"),
            )
        }
        _ => {}
    }
    r.build()
}

/// The operations that take an `Idempotency-Key`: any answer of theirs may be a replay.
const IDEMPOTENT: &[&str] = &["hold", "confirm", "walk_in"];

fn replayed() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["true"])),
        )
        .description(Some(
            "`true` when this is the recorded answer to an earlier request with the same \
             `Idempotency-Key` and body, replayed; absent otherwise",
        ))
        .build()
}

struct Problems;

impl utoipa::Modify for Problems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for method in [
                HttpMethod::Get,
                HttpMethod::Post,
                HttpMethod::Put,
                HttpMethod::Patch,
                HttpMethod::Delete,
            ] {
                let op = match method {
                    HttpMethod::Get => item.get.as_mut(),
                    HttpMethod::Post => item.post.as_mut(),
                    HttpMethod::Put => item.put.as_mut(),
                    HttpMethod::Patch => item.patch.as_mut(),
                    HttpMethod::Delete => item.delete.as_mut(),
                    _ => None,
                };
                let Some(op) = op else { continue };
                let id = op.operation_id.clone().unwrap_or_default();
                let statuses = PROBLEMS
                    .iter()
                    .find(|(name, _)| *name == id)
                    .map(|(_, s)| *s)
                    .unwrap_or_else(|| panic!("operation `{id}` is missing from PROBLEMS"));
                for s in statuses {
                    op.responses
                        .responses
                        .insert(s.to_string(), RefOr::T(problem_response(&id, *s)));
                }
                if IDEMPOTENT.contains(&id.as_str()) {
                    for r in op.responses.responses.values_mut() {
                        if let RefOr::T(r) = r {
                            r.headers.insert("Idempotent-Replayed".into(), replayed());
                        }
                    }
                }
            }
        }
    }
}

#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi",
    responses((status = 200, description = "this document (OpenAPI 3.1)", body = Object)))]
pub async fn openapi() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().json(document())
}

#[utoipa::path(get, path = "/asyncapi.json", operation_id = "asyncapi",
    responses((status = 200, description = "the live protocol of `/v1/live` (AsyncAPI 3)", body = Object)))]
pub async fn asyncapi() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().json(super::asyncapi::document())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::to_value(document()).unwrap()
    }

    #[test]
    fn every_operation_is_listed_once_in_the_problem_table() {
        let doc = doc();
        let mut ids: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        ids.sort();
        let mut table: Vec<&str> = PROBLEMS.iter().map(|(id, _)| *id).collect();
        table.sort();
        assert_eq!(ids, table);
    }

    #[test]
    fn problems_are_problem_json_and_auth_is_declared_where_it_applies() {
        let doc = doc();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                for (status, r) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert_eq!(
                            r["content"]["application/problem+json"]["schema"]["$ref"],
                            "#/components/schemas/Problem",
                            "{method} {path} {status}"
                        );
                    }
                }
                let secured = op.get("security").is_some();
                assert_eq!(secured, responses.contains_key("401"), "{method} {path}");
            }
        }
        assert!(!doc.to_string().contains("SPEC"));
    }

    /// Members the server always sends, `null` when unset, are required (and nullable).
    #[test]
    fn members_always_sent_are_required() {
        let doc = doc();
        for (schema, member) in [
            ("ReservationView", "combination_id"),
            ("WaitlistEntryView", "position"),
            ("WaitlistEntryView", "offer"),
            ("SlotBody", "covers_left"),
            ("RestaurantDoc", "pacing"),
        ] {
            let required = &doc["components"]["schemas"][schema]["required"];
            assert!(
                required
                    .as_array()
                    .is_some_and(|r| r.iter().any(|m| m == member)),
                "{schema}.{member}: {required}"
            );
        }
    }

    /// Instants are declared as `date-time`.
    #[test]
    fn instants_are_date_times() {
        let doc = doc();
        for (schema, member) in [
            ("SlotBody", "start"),
            ("SlotBody", "end"),
            ("ReservationView", "start"),
            ("ReservationView", "end"),
            ("ReservationView", "expires_at"),
            ("ReservationView", "created_at"),
            ("ReservationView", "updated_at"),
            ("OfferBody", "expires_at"),
            ("WaitlistEntryView", "created_at"),
        ] {
            let m = &doc["components"]["schemas"][schema]["properties"][member];
            assert_eq!(m["format"], "date-time", "{schema}.{member}: {m}");
        }
    }

    /// The live socket's upgrade is an operation like the others: its handshake headers, its
    /// `101` and each refusal it can answer; its frames are the AsyncAPI document's.
    #[test]
    fn the_live_upgrade_is_declared_with_its_refusals() {
        let doc = doc();
        let live = &doc["paths"]["/v1/live"]["get"];
        let mut statuses: Vec<&str> = live["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        statuses.sort_unstable();
        assert_eq!(statuses, ["101", "400", "403", "429", "503"], "{live}");
        let said = |s: &str| live["responses"][s]["description"].as_str().unwrap();
        assert!(said("403").contains("Origin"), "{live}");
        assert!(said("429").contains("connections"), "{live}");
        assert!(live.get("security").is_none(), "anyone may connect");
        let headers: Vec<&str> = live["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "header")
            .filter_map(|p| p["name"].as_str())
            .collect();
        for h in [
            "Upgrade",
            "Sec-WebSocket-Version",
            "Sec-WebSocket-Key",
            "Origin",
        ] {
            assert!(headers.contains(&h), "{h} in {headers:?}");
        }
    }

    #[test]
    fn every_answer_of_an_idempotent_operation_declares_the_replay_header() {
        let doc = doc();
        let mut seen = 0;
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let id = op["operationId"].as_str().unwrap_or_default();
                for (status, r) in op["responses"].as_object().unwrap() {
                    let declared = r["headers"].get("Idempotent-Replayed").is_some();
                    assert_eq!(declared, IDEMPOTENT.contains(&id), "{id} {status}");
                    seen += usize::from(declared);
                }
            }
        }
        assert!(seen > IDEMPOTENT.len(), "{seen}");
    }
}
