//! A reservation's own life: confirm, read, release or cancel.
use super::*;

#[tokio::test]
async fn confirm_answers_200_with_the_guest_and_a_repeat_answers_200_again() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let (r, token) = held(
        &app,
        &f.id,
        json!({"date": date_in(3), "time": "19:00", "party_size": 2}),
    )
    .await;
    let id = r["id"].as_str().unwrap();
    let body = json!({"guest": {"name": "Ada", "email": "ada@example.com", "phone": "+33 1 23 45 67 89"}, "notes": "window"});
    let path = format!("/v1/reservations/{id}/confirm");

    let c = json_body(
        app.send(Method::POST, &path, Some(&token), Some(body.clone()))
            .await,
        StatusCode::OK,
        "confirm",
    )
    .await;
    assert_eq!(c["id"], id);
    assert_eq!(c["status"], "confirmed");
    assert!(c.get("expires_at").is_none(), "expires_at only while held");
    assert_eq!(c["guest"], body["guest"]);
    assert_eq!(c["notes"], "window");
    assert_eq!(
        (&c["start"], &c["end"], &c["table_id"]),
        (&r["start"], &r["end"], &r["table_id"])
    );

    let again = json_body(
        app.send(Method::POST, &path, Some(&token), Some(body))
            .await,
        StatusCode::OK,
        "repeat",
    )
    .await;
    assert_eq!(again["status"], "confirmed");
    assert_eq!(again["guest"], c["guest"]);
}

#[tokio::test]
async fn confirm_after_the_hold_expired_is_410() {
    let app = TestApp::spawn().await;
    let mut body = restaurant_body(json!([{"id": "t1", "max_party": 2}]));
    body["hold_seconds"] = json!(1);
    let f = app.create_restaurant(body).await;
    let date = date_in(3);
    let (r, token) = held(
        &app,
        &f.id,
        json!({"date": date, "time": "19:00", "party_size": 2}),
    )
    .await;
    let id = r["id"].as_str().unwrap().to_owned();

    eventually(
        std::time::Duration::from_secs(5),
        "the hold to read as expired",
        || async {
            let v: Value = app.get_reservation(&id, &token).await.json().await.unwrap();
            v["status"] == "expired"
        },
    )
    .await;
    let v: Value = app.get_reservation(&id, &token).await.json().await.unwrap();
    assert!(v.get("expires_at").is_none());

    assert_problem(
        app.confirm(&id, &token).await,
        410,
        "hold-expired",
        "late confirm",
    )
    .await;
    assert_eq!(
        free_at(&app.availability(&f.id, &date, 2).await, "19:00"),
        1
    );
    assert_eq!(
        app.delete_reservation(&id, &token).await.status(),
        StatusCode::NO_CONTENT,
        "DELETE on an expired hold changes nothing"
    );
    let v: Value = app.get_reservation(&id, &token).await.json().await.unwrap();
    assert_eq!(v["status"], "expired");
}

#[tokio::test]
async fn a_reservation_reads_back_with_its_guest_for_its_token_staff_and_admin() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let (id, token) = confirmed(&app, &f.id, &date_in(3), "19:00", "t2").await;
    for who in [token.as_str(), f.staff.as_str(), ADMIN] {
        let v = json_body(app.get_reservation(&id, who).await, StatusCode::OK, "get").await;
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["status"], "confirmed");
        assert_eq!(v["table_id"], "t2");
        assert_eq!(
            v["guest"],
            json!({"name": "Ada", "email": "ada@example.com"})
        );
        assert!(
            v.get("token").is_none(),
            "the token is returned only with the hold"
        );
        for at in ["created_at", "updated_at"] {
            assert!(v[at].as_str().unwrap().ends_with('Z'));
            instant(&v[at]);
        }
    }
}

#[tokio::test]
async fn deleting_a_hold_releases_it_and_a_repeat_answers_204() {
    let app = TestApp::spawn().await;
    let f = one_table_restaurant(&app, None).await;
    let date = date_in(3);
    let (r, token) = held(
        &app,
        &f.id,
        json!({"date": date, "time": "19:00", "party_size": 2}),
    )
    .await;
    let id = r["id"].as_str().unwrap();
    assert_eq!(
        free_at(&app.availability(&f.id, &date, 2).await, "19:00"),
        0
    );

    assert_eq!(
        app.delete_reservation(id, &token).await.status(),
        StatusCode::NO_CONTENT
    );
    let v = json_body(app.get_reservation(id, &token).await, StatusCode::OK, "get").await;
    assert_eq!(v["status"], "released");
    let a = app.availability(&f.id, &date, 2).await;
    assert_eq!(free_at(&a, "19:00"), 1);

    assert_eq!(
        app.delete_reservation(id, &token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        json_body(app.get_reservation(id, &token).await, StatusCode::OK, "get").await["status"],
        "released"
    );
    assert_eq!(
        app.availability(&f.id, &date, 2).await["version"],
        a["version"],
        "a repeat changes nothing"
    );
}

#[tokio::test]
async fn deleting_a_confirmed_reservation_cancels_it_and_a_repeat_answers_204() {
    let app = TestApp::spawn().await;
    let f = one_table_restaurant(&app, None).await;
    let date = date_in(3);
    let (id, token) = confirmed(&app, &f.id, &date, "19:00", "t1").await;
    assert_eq!(
        app.delete_reservation(&id, &token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        json_body(
            app.get_reservation(&id, &token).await,
            StatusCode::OK,
            "get"
        )
        .await["status"],
        "cancelled"
    );
    assert_eq!(
        free_at(&app.availability(&f.id, &date, 2).await, "19:00"),
        1
    );
    assert_eq!(
        app.delete_reservation(&id, &token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        json_body(
            app.get_reservation(&id, &token).await,
            StatusCode::OK,
            "get"
        )
        .await["status"],
        "cancelled"
    );
}

/// The contract ties a cancellation to the status alone: `confirmed` → `cancelled` by the
/// reservation's token, whenever (the manage page offers it only until the end).
#[tokio::test]
async fn a_confirmed_booking_is_cancelled_by_its_own_token_even_after_its_end() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let (id, token) = confirmed(&app, &f.id, &date_in(3), "19:00", "t1").await;
    move_back(&app.db_url, &id, 4).await;
    assert_eq!(
        app.delete_reservation(&id, &token).await.status(),
        StatusCode::NO_CONTENT
    );
    let read = json_body(
        app.get_reservation(&id, &token).await,
        StatusCode::OK,
        "get",
    )
    .await;
    assert_eq!(read["status"], "cancelled");
}

#[tokio::test]
async fn deleting_a_seated_reservation_is_409_invalid_transition() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let (id, token) = confirmed(&app, &f.id, &date_in(3), "19:00", "t1").await;
    assert_eq!(
        app.set_status(&id, &f.staff, "seated").await.status(),
        StatusCode::OK
    );
    assert_problem(
        app.delete_reservation(&id, &token).await,
        409,
        "invalid-transition",
        "delete seated",
    )
    .await;
    assert_eq!(
        json_body(
            app.get_reservation(&id, &token).await,
            StatusCode::OK,
            "get"
        )
        .await["status"],
        "seated"
    );
}

#[tokio::test]
async fn confirming_a_released_or_cancelled_reservation_is_409_invalid_transition() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let (released, token) = held(
        &app,
        &f.id,
        json!({"date": date, "time": "19:00", "party_size": 2}),
    )
    .await;
    let released = released["id"].as_str().unwrap();
    app.delete_reservation(released, &token).await;
    assert_problem(
        app.confirm(released, &token).await,
        409,
        "invalid-transition",
        "confirm released",
    )
    .await;
    assert_eq!(
        json_body(
            app.get_reservation(released, &token).await,
            StatusCode::OK,
            "get"
        )
        .await["status"],
        "released"
    );

    let (cancelled, token) = confirmed(&app, &f.id, &date, "20:00", "t2").await;
    app.delete_reservation(&cancelled, &token).await;
    assert_problem(
        app.confirm(&cancelled, &token).await,
        409,
        "invalid-transition",
        "confirm cancelled",
    )
    .await;
    assert_eq!(
        json_body(
            app.get_reservation(&cancelled, &token).await,
            StatusCode::OK,
            "get"
        )
        .await["status"],
        "cancelled"
    );
}
