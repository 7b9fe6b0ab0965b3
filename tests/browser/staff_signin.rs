//! The dashboard opened for one restaurant signs in to that restaurant alone.
use crate::harness::*;
use serde_json::json;
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test]
async fn staff_of_the_second_restaurant_open_its_floor_without_a_403_from_the_first() {
    if require(
        Service::Chromium,
        "staff_of_the_second_restaurant_open_its_floor_without_a_403_from_the_first",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("signin.db"), 0);
    let tables = json!([{"id": "t1", "label": "T1", "min_party": 1, "max_party": 4}]);
    let (_first, _) = server
        .restaurant(paris_restaurant("First", tables.clone()))
        .await;
    let (second, token) = server.restaurant(paris_restaurant("Second", tables)).await;
    let date = date_in(1);

    let mut driver = Driver::start().await;
    let staff = driver.browser(1200, 800).await;
    staff.sign_in_staff(&server, &second, &date, &token).await;
    // The floor opens on the restaurant the URL names (the socket may be live before it loads).
    until(SECS(10), "the second restaurant's floor", || async {
        let shown = staff
            .js(
                "return document.querySelector('#restaurant').value;",
                vec![],
            )
            .await;
        (shown == json!(second)).then_some(())
    })
    .await;
    // The server answered no 403 to this sign-in: it never tried the first restaurant.
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("tablecast_http_requests_total") && l.contains("status=\"403\"")),
        "a 403 was answered during sign-in:\n{metrics}"
    );
    staff.finish(&[]).await;
}

/// Staff of the newest of many restaurants sign in without naming it, and a reload that meets
/// a store outage keeps their token: it signs in again by itself once the server is well.
#[tokio::test]
async fn staff_of_the_seventieth_restaurant_sign_in_and_keep_their_token_through_an_outage() {
    if require(
        Service::Chromium,
        "staff_of_the_seventieth_restaurant_sign_in_and_keep_their_token_through_an_outage",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("many.db");
    let server = Server::start(&db, 0);
    let tables = json!([{"id": "t1", "label": "T1", "min_party": 1, "max_party": 4}]);
    let mut last = None;
    for i in 1..=70 {
        last = Some(
            server
                .restaurant(paris_restaurant(&format!("Bistro {i}"), tables.clone()))
                .await,
        );
    }
    let (newest, token) = last.unwrap();
    let date = date_in(1);

    let mut driver = Driver::start().await;
    let staff = driver.browser(1200, 800).await;
    let page = server.url(&format!("/staff?date={date}"));
    staff.goto(&page).await;
    staff.type_into("[data-testid=staff-token]", &token).await;
    staff.click("[data-testid=staff-login]").await;
    live_on(&staff, &newest).await;

    // The next page load meets a store outage: every floor read answers 503, as the server
    // does when its store cannot answer. The one after it finds the server well again.
    staff
        .before_each_page(
            r#"globalThis.outageProbes = 0;
               if (!sessionStorage.getItem("test.outage")) {
                 sessionStorage.setItem("test.outage", "1");
                 const real = window.fetch;
                 window.fetch = (url, init) => {
                   if (!String(url).includes("/reservations?")) return real(url, init);
                   globalThis.outageProbes += 1;
                   return Promise.resolve(new Response(JSON.stringify({type: "/problems/unavailable",
                       title: "Service Unavailable", status: 503, detail: "the store is unavailable"}),
                       {status: 503, headers: {"content-type": "application/problem+json"}}));
                 };
               }"#,
        )
        .await;
    staff.goto(&page).await;
    until(SECS(10), "the sign-in to fail for the outage", || async {
        let said = staff.text("#login-error").await.unwrap_or_default();
        said.contains("Try again").then_some(())
    })
    .await;
    let said = staff.text("#login-error").await.unwrap_or_default();
    assert!(!said.contains("not staff"), "{said}");
    // A server that cannot answer is not asked about all 70 restaurants: one batch of 8.
    let probes = staff.js("return globalThis.outageProbes;", vec![]).await;
    assert!(
        probes.as_u64().is_some_and(|n| (1..=8).contains(&n)),
        "{probes} probes"
    );
    assert_eq!(
        staff
            .js("return sessionStorage.getItem('tablecast.staff');", vec![])
            .await,
        json!(token),
        "the token was kept"
    );
    staff.goto(&page).await;
    live_on(&staff, &newest).await;
    // Finding their restaurant asked the 69 others first, and each refused the token.
    staff.finish(&["status of 403"]).await;
}

/// Waits until the dashboard is live on restaurant `rid` (the socket may be live before its
/// floor loads).
async fn live_on(staff: &Browser, rid: &str) {
    staff
        .wait_attr("[data-testid=live-status]", "data-state", "live", SECS(20))
        .await;
    until(SECS(10), "the restaurant's floor", || async {
        let shown = staff
            .js(
                "return document.querySelector('#restaurant')?.value || null;",
                vec![],
            )
            .await;
        (shown == json!(rid)).then_some(())
    })
    .await;
}

/// The floor subscription refused with `401` (the token no longer opens it, as the server
/// answers an unknown token): the dashboard signs out and says why, instead of a floor that
/// never loads.
#[tokio::test]
async fn a_floor_the_server_refuses_signs_the_dashboard_out_and_says_why() {
    if require(
        Service::Chromium,
        "a_floor_the_server_refuses_signs_the_dashboard_out_and_says_why",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("refused_floor.db"), 0);
    let tables = json!([{"id": "t1", "label": "T1", "min_party": 1, "max_party": 4}]);
    let (rid, token) = server.restaurant(paris_restaurant("Fermé", tables)).await;
    let date = date_in(1);
    let mut driver = Driver::start().await;
    let staff = driver.browser(1200, 800).await;
    // The floor's subscribe is answered with the server's 401 frame, never sent.
    staff
        .before_each_page(
            r#"const NativeSocket = WebSocket;
               globalThis.WebSocket = class extends NativeSocket {
                 send(data) {
                   let m = null;
                   try { m = JSON.parse(data); } catch { m = null; }
                   if (m && m.op === "subscribe" && m.view === "floor") {
                     const frame = { type: "error", sub: m.sub, status: 401, title: "Unauthorized",
                                     detail: "unknown or expired token" };
                     setTimeout(() => this.onmessage && this.onmessage(
                       new MessageEvent("message", { data: JSON.stringify(frame) })), 10);
                     return;
                   }
                   super.send(data);
                 }
               };"#,
        )
        .await;
    staff
        .goto(&server.url(&format!("/staff?restaurant={rid}&date={date}")))
        .await;
    staff.type_into("[data-testid=staff-token]", &token).await;
    staff.click("[data-testid=staff-login]").await;
    let said = until(
        SECS(10),
        "the dashboard to sign out and say why",
        || async {
            staff
                .text("#login-error")
                .await
                .filter(|t| t.contains("Sign in again"))
        },
    )
    .await;
    assert!(said.contains("unknown or expired token"), "{said}");
    assert!(staff.visible("[data-testid=staff-token]").await);
    assert_eq!(
        staff
            .js("return sessionStorage.getItem('tablecast.staff');", vec![])
            .await,
        serde_json::Value::Null,
        "the token is forgotten"
    );
    staff.finish(&[]).await;
}
