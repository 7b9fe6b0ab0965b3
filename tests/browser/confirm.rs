//! A confirm the server refuses (422) is told per field, and the diner can fix the field and
//! confirm: on the diner page and on the manage page (which also names a combination's tables).
use crate::harness::*;
use serde_json::json;
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;
const GOOD_PHONE: &str = "+33 1 23 45 67 89";

/// Waits for the page to answer the confirm just sent: `Ok` once `done` shows, `Err(status)`
/// once the status line says the confirm was refused.
async fn confirm_outcome(b: &Browser, done: &str) -> Result<(), String> {
    until(SECS(10), "the confirm to be answered", || async {
        if b.visible(done).await {
            return Some(Ok(()));
        }
        let status = b.text("[data-testid=status]").await?;
        status.contains("Could not confirm").then_some(Err(status))
    })
    .await
}

/// The phone field's error, once the page shows one.
async fn phone_error(b: &Browser) -> String {
    until(
        SECS(10),
        "the phone field to show the server's error",
        || async {
            let invalid = b.attr("[data-testid=guest-phone]", "aria-invalid").await;
            let text = b.text("#guest-phone-error").await?;
            (invalid.as_deref() == Some("true") && !text.is_empty()).then_some(text)
        },
    )
    .await
}

#[tokio::test]
async fn a_diner_fixes_a_phone_the_server_refused_and_confirms() {
    if require(
        Service::Chromium,
        "a_diner_fixes_a_phone_the_server_refused",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("confirm.db"), 0);
    let (rid, _) = server
        .restaurant(paris_restaurant(
            "Le Numéro",
            json!([{"id": "t1", "label": "T1", "max_party": 2}]),
        ))
        .await;
    let date = date_in(2);

    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner
        .goto(&server.url(&format!("/?restaurant={rid}&date={date}&party=2")))
        .await;
    diner.take_hold("19:00").await;
    diner.type_into("[data-testid=guest-name]", "Ada").await;
    // Two digits pass the page's own check (a name and a contact) but not the server's.
    diner.type_into("[data-testid=guest-phone]", "12").await;
    diner.click("[data-testid=confirm]").await;
    let error = phone_error(&diner).await;
    assert!(error.contains("not a phone number"), "{error}");
    assert!(diner.visible("[data-testid=hold]").await, "still held");

    // Fixed: the new details are a new request, and it is booked.
    diner
        .type_into("[data-testid=guest-phone]", GOOD_PHONE)
        .await;
    diner.click("[data-testid=confirm]").await;
    let outcome = confirm_outcome(&diner, "[data-testid=manage-link]").await;
    assert_eq!(outcome, Ok(()), "the fixed details confirm");
    let ticket = diner.text("#ticket").await.unwrap();
    assert!(ticket.contains(GOOD_PHONE), "{ticket}");

    diner.finish(&["422"]).await;
}

#[tokio::test]
async fn the_manage_page_names_a_combinations_tables_and_shows_a_refused_field() {
    if require(
        Service::Chromium,
        "the_manage_page_names_a_combinations_tables",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("manage-confirm.db"), 0);
    let mut body = paris_restaurant(
        "La Grande Tablée",
        json!([
            {"id": "t1", "label": "T1", "max_party": 2},
            {"id": "t3", "label": "T3", "max_party": 4},
            {"id": "t4", "label": "T4", "max_party": 4},
        ]),
    );
    body["combinations"] =
        json!([{"id": "c34", "tables": ["t3", "t4"], "min_party": 5, "max_party": 8}]);
    let (rid, _) = server.restaurant(body).await;
    let date = date_in(2);
    // A party of six takes the combination; its link opens the hold with the confirm form.
    let held = server.hold(&rid, &date, "20:00", 6, None).await;
    assert_eq!(held["table_ids"], json!(["t3", "t4"]), "{held}");
    let id = held["id"].as_str().unwrap();
    let token = held["token"].as_str().unwrap();

    let mut driver = Driver::start().await;
    let page = driver.browser(1100, 900).await;
    page.goto(&server.url(&format!("/reservation/{id}#t={token}")))
        .await;
    page.wait_attr("[data-testid=manage]", "data-status", "held", SECS(15))
        .await;
    let tables = page
        .text(r#"[data-testid=ticket] dd[data-field="tables"]"#)
        .await;
    assert_eq!(tables.as_deref(), Some("T3 + T4"));

    page.type_into("[data-testid=guest-name]", "Grace").await;
    page.type_into("[data-testid=guest-phone]", "12").await;
    page.click("[data-testid=confirm]").await;
    let error = phone_error(&page).await;
    assert!(error.contains("not a phone number"), "{error}");
    let status = page.text("[data-testid=status]").await.unwrap();
    assert!(status.contains("Could not confirm"), "{status}");

    page.type_into("[data-testid=guest-phone]", GOOD_PHONE)
        .await;
    page.click("[data-testid=confirm]").await;
    page.wait_attr("[data-testid=manage]", "data-status", "confirmed", SECS(10))
        .await;
    let ticket = page.text("[data-testid=ticket]").await.unwrap();
    assert!(
        ticket.contains("Grace") && ticket.contains(GOOD_PHONE) && ticket.contains("T3 + T4"),
        "{ticket}"
    );
    assert_eq!(page.text("#guest-phone-error").await.as_deref(), Some(""));

    page.finish(&["422"]).await;
}

/// A validation problem is told by its fields' messages, not by its generic detail ("Validation
/// failed: validation failed"): the page's own `api` module against the server's real answer.
#[tokio::test]
async fn a_validation_problem_reads_as_what_was_wrong_with_each_field() {
    if require(
        Service::Chromium,
        "a_validation_problem_reads_as_what_was_wrong_with_each_field",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("problem.db"), 0);
    let (rid, _) = server
        .restaurant(paris_restaurant(
            "Le Champ",
            json!([{"id": "t1", "label": "T1", "min_party": 1, "max_party": 4}]),
        ))
        .await;
    let yesterday = date_in(-1);
    let body = json!({"date": yesterday, "time": "19:00", "party_size": 2});
    let (status, problem) = server
        .send(
            reqwest::Method::POST,
            &format!("/v1/restaurants/{rid}/holds"),
            None,
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    let field = &problem["errors"][0];

    let mut driver = Driver::start().await;
    let diner = driver.browser(1000, 800).await;
    diner.goto(&server.url("/")).await;
    let said = diner
        .js(
            "return import('/assets/api.js').then((m) => m.api('POST', arguments[0], { body: arguments[1] })
               .then(() => 'accepted', (e) => e.describe()));",
            vec![json!(format!("/v1/restaurants/{rid}/holds")), body],
        )
        .await;
    assert_eq!(
        said,
        json!(format!(
            "Validation failed: {} {}",
            field["field"].as_str().unwrap(),
            field["message"].as_str().unwrap()
        ))
    );
    diner.finish(&["status of 422"]).await;
}

/// While a confirm is on its way, "Let it go" cannot be sent behind it (nor the confirm twice):
/// the booking the page then shows is the one the server keeps.
#[tokio::test]
async fn a_hold_cannot_be_let_go_while_its_confirm_is_on_its_way() {
    let Some(scene) = scene(
        "a_hold_cannot_be_let_go_while_its_confirm",
        paris_restaurant(
            "Une Fois",
            json!([{"id": "t1", "label": "T1", "max_party": 2}]),
        ),
    )
    .await
    else {
        return;
    };
    let server = &scene.server;
    let rid = &scene.rid;
    let staff = &scene.staff;
    let date = date_in(2);

    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner.before_each_page(DELAYABLE_FETCH).await;
    diner
        .goto(&server.url(&format!("/?restaurant={rid}&date={date}&party=2")))
        .await;
    diner.take_hold("19:00").await;
    diner.type_into("[data-testid=guest-name]", "Ada").await;
    diner
        .type_into("[data-testid=guest-email]", "ada@example.com")
        .await;
    diner.js("globalThis.fetchDelayMs = 1500;", vec![]).await;
    diner.click("[data-testid=confirm]").await;
    assert!(
        diner.disabled("[data-testid=release]").await,
        "Let it go waits"
    );
    assert!(
        diner.disabled("[data-testid=confirm]").await,
        "so does Confirm"
    );
    confirm_outcome(&diner, "[data-testid=confirmation]")
        .await
        .unwrap();
    let list = reservations_of(server, rid, staff, &date).await;
    let statuses: Vec<&str> = list.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["confirmed"]);
    diner.finish(&[]).await;
}
