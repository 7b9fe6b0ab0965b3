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
