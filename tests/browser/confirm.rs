//! A confirm the server refuses (422) is told per field, and the diner can fix the field and
//! confirm.
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
    diner
        .click(r#"[data-testid=slot][data-time="19:00"]"#)
        .await;
    diner.wait_visible("[data-testid=hold]", SECS(15)).await;
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
