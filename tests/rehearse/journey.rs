//! The journey through the deployed shape (scripts/rehearse): every function, every AWS
//! permission, through the gateway with a browser's CORS preflights. Ignored unless run by
//! scripts/rehearse (`--ignored`), which points API_URL at the rehearsal's gateway.

#[path = "../it/support.rs"]
#[allow(dead_code)]
mod support;

#[tokio::test]
#[ignore = "run by scripts/rehearse against the rehearsal's gateway"]
async fn health_through_the_gateway() {
    let response = support::stack()
        .http
        .get(support::url("/health"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
}
