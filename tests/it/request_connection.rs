//! What a request costs the pool: its handler reuses the connection its authentication checked
//! out, so behind the pooler it pays one checkout and one liveness check, not two; unless the
//! handler asks for it only after `KEPT_UNCHECKED_FOR`.

use std::time::Duration;

use deadpool_postgres::Object;
use tower::ServiceExt;

use crate::support::{app_state, NewUser};

#[tokio::test]
async fn an_authenticated_request_checks_out_one_connection() {
    let state = app_state().await;
    let app = shared::http::app(state.clone(), &[shared::http::Group::Calls.served()]);
    let token = NewUser::new().token();
    let list_calls = || async {
        let request = axum::http::Request::get("/api/calls?limit=20")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .expect("a request");
        let response = app.clone().oneshot(request).await.expect("an answer");
        assert_eq!(response.status(), 200);
    };
    // Used one at a time, the state's pool holds one connection: each checkout recycles it.
    let checkouts = || async {
        let client = state.db().get().await.expect("a connection");
        Object::metrics(&client).recycle_count
    };

    // The first request creates the user (and the pool's connection).
    list_calls().await;
    let before = checkouts().await;
    list_calls().await;
    let after = checkouts().await;
    assert_eq!(
        after - before,
        2,
        "one checkout for the request (authentication and handler), one for this count"
    );
}

#[tokio::test]
async fn a_connection_kept_too_long_is_checked_out_again() {
    let state = app_state().await;
    let db = state.db();
    let recycles = |client: &Object| Object::metrics(client).recycle_count;
    shared::db::with_request_connection(async {
        let client = db.get().await.expect("a connection");
        let checked_out = recycles(&client);
        db.keep_for_request(client);
        let again = db.get().await.expect("the kept connection");
        assert_eq!(recycles(&again), checked_out, "handed out again as it was");

        db.keep_for_request(again);
        tokio::time::sleep(shared::db::KEPT_UNCHECKED_FOR + Duration::from_millis(20)).await;
        // Used one at a time, the state's pool holds this one connection: it comes back
        // through a checkout.
        let later = db.get().await.expect("a connection");
        assert_eq!(recycles(&later), checked_out + 1, "checked out again");
    })
    .await;
}
