//! The diner web app (`GET /`) and the live staff dashboard (`GET /staff`): plain HTML, CSS and
//! JavaScript modules embedded in the binary, so nothing is built or fetched to run them.
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use once_cell::sync::Lazy;
use sha2::{Digest, Sha256};

/// Same-origin only: no CDN, no inline script or style, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $file:literal, $ct:expr) => {
        Asset {
            path: $path,
            content_type: $ct,
            body: include_bytes!(concat!("assets/", $file)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("/", "index.html", HTML),
    asset!("/staff", "staff.html", HTML),
    // Served at `/reservation/{id}` (see `page`).
    asset!("/reservation", "manage.html", HTML),
    asset!("/assets/app.css", "app.css", "text/css; charset=utf-8"),
    asset!("/assets/api.js", "api.js", JS),
    asset!("/assets/live.js", "live.js", JS),
    asset!("/assets/ui.js", "ui.js", JS),
    asset!("/assets/diner.js", "diner.js", JS),
    asset!("/assets/staff.js", "staff.js", JS),
    asset!("/assets/manage.js", "manage.js", JS),
    asset!("/assets/links.js", "links.js", JS),
    asset!("/assets/pacing.js", "pacing.js", JS),
    asset!("/assets/settings.js", "settings.js", JS),
    asset!("/assets/guest.js", "guest.js", JS),
    asset!("/assets/diner-waitlist.js", "diner-waitlist.js", JS),
    asset!("/assets/staff-waitlist.js", "staff-waitlist.js", JS),
    asset!("/assets/walkin.js", "walkin.js", JS),
    asset!("/assets/slots.js", "slots.js", JS),
    asset!("/assets/favicon.svg", "favicon.svg", "image/svg+xml"),
];

/// Strong validators, computed once: assets change only with the binary.
static ETAGS: Lazy<Vec<String>> = Lazy::new(|| {
    ASSETS
        .iter()
        .map(|a| format!("\"{}\"", &hex::encode(Sha256::digest(a.body))[..16]))
        .collect()
});

fn serve(req: &HttpRequest, index: usize) -> HttpResponse {
    let asset = &ASSETS[index];
    let etag = &ETAGS[index];
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if asset.content_type == HTML {
        res.insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ));
    }
    if fresh {
        return res.finish();
    }
    res.content_type(asset.content_type).body(asset.body)
}

/// The paths the pages are served under (`GET` and `HEAD`).
pub const ROUTES: [&str; 4] = ["/", "/staff", "/reservation/{id}", "/assets/{name}"];

/// The embedded page or asset at the request's path, if there is one. `/reservation/{id}` is
/// the manage page of any reservation (its token is in the URL fragment, read by the page).
pub fn page(req: &HttpRequest) -> Option<HttpResponse> {
    let path = match req.path().strip_prefix("/reservation/") {
        Some(id) if !id.is_empty() && !id.contains('/') => "/reservation",
        _ => req.path(),
    };
    ASSETS
        .iter()
        .position(|a| a.path == path)
        .map(|i| serve(req, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_path_and_a_known_type() {
        let mut paths: Vec<_> = ASSETS.iter().map(|a| a.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), ASSETS.len());
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{} is empty", a.path);
            if a.path.ends_with(".js") {
                assert_eq!(a.content_type, JS, "{}", a.path);
            }
        }
    }
}
