//! Account emails through the outbox and the real SMTP sink the scripts start: a welcome on the
//! first login (once), and a low-credit warning once per crossing below the threshold.

use crate::support::{self, apply_change, eventually, mail, pool, Account};
use shared::credits::CreditKind;

fn low_credit_warnings(email: &str) -> usize {
    mail::delivered_to(email)
        .iter()
        .filter(|m| m.subject.contains("running low"))
        .count()
}

#[tokio::test]
async fn the_first_login_sends_one_welcome_email() {
    let account = Account::new().await;
    // More requests of the same user do not welcome it again.
    for _ in 0..3 {
        support::get("/auth/profile", &account.token).await;
    }
    let welcome = eventually(20, "the welcome email", || async {
        mail::delivered_to(&account.user.email)
            .into_iter()
            .find(|m| m.subject.contains("Welcome"))
    })
    .await;
    assert!(welcome.body.contains("15 free credits"), "{}", welcome.body);
    assert_eq!(welcome.content_type, "text/plain; charset=utf-8");
    support::outbox_sent(account.id).await;
    let welcomes = mail::delivered_to(&account.user.email)
        .iter()
        .filter(|m| m.subject.contains("Welcome"))
        .count();
    assert_eq!(welcomes, 1);
}

#[tokio::test]
async fn the_low_credit_warning_goes_out_once_per_crossing() {
    let account = Account::new().await;
    let pool = pool(1);
    let tenant = account.tenant(&pool).await;
    let mut step = 0;
    let mut change = |kind, amount| {
        step += 1;
        apply_change(
            &pool,
            tenant,
            kind,
            amount,
            format!("email-test-{}-{step}", account.id),
        )
    };
    // 15 -> 5: at the threshold, not below it.
    change(CreditKind::Usage, -10).await;
    // 5 -> 4 -> 3: one crossing, one warning.
    change(CreditKind::Usage, -1).await;
    change(CreditKind::Usage, -1).await;
    eventually(20, "the first warning", || async {
        (low_credit_warnings(&account.user.email) == 1).then_some(())
    })
    .await;
    let warning = mail::delivered_to(&account.user.email)
        .into_iter()
        .find(|m| m.subject.contains("running low"))
        .expect("warning");
    assert!(
        warning.body.contains("Your balance is 4 credits, below 5."),
        "{}",
        warning.body
    );
    // Back above the threshold re-arms it; the next crossing warns again.
    change(CreditKind::AdminAdjustment, 10).await;
    change(CreditKind::Usage, -11).await;
    eventually(20, "the second warning", || async {
        (low_credit_warnings(&account.user.email) == 2).then_some(())
    })
    .await;
    support::outbox_sent(account.id).await;
    assert_eq!(low_credit_warnings(&account.user.email), 2);
}

#[tokio::test]
async fn the_welcome_names_the_user_only_once_the_address_is_shown_to_be_theirs() {
    let lure = "Your card was charged $499, call +1 555 0100";
    for verified in [false, true] {
        let user = support::NewUser::new();
        let token = user.token_with(|claims| {
            claims["name"] = serde_json::json!(lure);
            claims["email_verified"] = serde_json::json!(verified);
        });
        assert_eq!(support::get("/auth/profile", &token).await.status(), 200);
        let welcome = eventually(20, "the welcome email", || async {
            mail::delivered_to(&user.email)
                .into_iter()
                .find(|m| m.subject.contains("Welcome"))
        })
        .await;
        assert_eq!(
            welcome.body.contains(lure),
            verified,
            "verified: {verified}: {}",
            welcome.body
        );
    }
}
