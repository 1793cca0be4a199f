//! The ledger under concurrency: random credit changes applied in parallel through the one core
//! function, with replayed references; afterwards the balance equals the sum of the ledger and
//! every balance_after follows from the one before it.

use futures::future::join_all;
use proptest::prelude::*;
use shared::{
    credits::{self, Applied, CreditChange, CreditKind},
    users,
};

use crate::support::{apply_change, blocks_read, db, get, json, pool, NewUser, ScratchDatabase};

#[derive(Debug, Clone)]
struct Op {
    kind: CreditKind,
    amount: i64,
    /// Small numbers on purpose: references repeat, as replayed webhooks do.
    reference: u8,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1_i64..=500).prop_map(|a| (CreditKind::Purchase, a)),
        (1_i64..=30).prop_map(|a| (CreditKind::Usage, -a)),
        (1_i64..=100).prop_map(|a| (CreditKind::Refund, -a)),
        (-50_i64..=50)
            .prop_filter("non-zero", |a| *a != 0)
            .prop_map(|a| (CreditKind::AdminAdjustment, a)),
    ]
    .prop_flat_map(|(kind, amount)| (Just(kind), Just(amount), 0_u8..40))
    .prop_map(|(kind, amount, reference)| Op {
        kind,
        amount,
        reference,
    })
}

async fn run_case(ops: Vec<Op>) {
    let pool = pool(16);
    let new = NewUser::new();
    let user = users::provision(&mut pool.get().await.expect("conn"), &new.identity())
        .await
        .expect("user");
    let tenant = user.tenant();
    let run_id = uuid::Uuid::new_v4();

    let results = join_all(ops.iter().map(|op| {
        apply_change(
            &pool,
            tenant,
            op.kind,
            op.amount,
            format!("{run_id}:{}", op.reference),
        )
    }))
    .await;

    // Exactly one application per (kind, reference); later ones are reported as duplicates.
    let mut first_seen = std::collections::HashMap::new();
    for (op, applied) in ops.iter().zip(&results) {
        if let Applied::New(entry) = applied {
            assert!(
                first_seen
                    .insert((op.kind, op.reference), entry.amount)
                    .is_none(),
                "applied twice: {op:?}"
            );
        }
    }
    let expected: i64 = 15 + first_seen.values().sum::<i64>();

    let db = db().await;
    let rows = db
        .query(
            "SELECT amount, balance_after FROM credit_transactions WHERE user_id = $1 ORDER BY id",
            &[tenant.as_uuid()],
        )
        .await
        .expect("ledger");
    let mut running = 0;
    for row in &rows {
        running += row.get::<_, i64>("amount");
        assert_eq!(
            row.get::<_, i64>("balance_after"),
            running,
            "balance_after follows the previous row"
        );
    }
    assert_eq!(
        rows.len(),
        first_seen.len() + 1,
        "bonus plus one row per distinct change"
    );
    assert_eq!(running, expected);
    let balance: i64 = db
        .query_one(
            "SELECT credits FROM users WHERE id = $1",
            &[tenant.as_uuid()],
        )
        .await
        .expect("user")
        .get(0);
    assert_eq!(balance, expected, "users.credits agrees with the ledger");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn concurrent_random_changes_keep_the_ledger_exact(ops in prop::collection::vec(op(), 1..80)) {
        tokio::runtime::Runtime::new().expect("runtime").block_on(run_case(ops));
    }
}

#[tokio::test]
async fn the_ledger_is_append_only_and_amounts_keep_their_sign() {
    let new = NewUser::new();
    let token = new.token();
    assert_eq!(
        json(get("/api/user/credits", &token).await).await["credits"],
        15
    );
    let db = db().await;
    let err = db
        .execute(
            "UPDATE credit_transactions SET amount = 1000 WHERE user_id = (SELECT id FROM users WHERE auth_subject = $1)",
            &[&new.sub],
        )
        .await
        .expect_err("updates are refused");
    assert!(
        err.to_string().contains("append-only") || format!("{err:?}").contains("append-only"),
        "{err:?}"
    );
    assert!(db
        .execute(
            "DELETE FROM credit_transactions WHERE amount = 15 AND false",
            &[]
        )
        .await
        .is_err());

    let pool = pool(2);
    let mut client = pool.get().await.expect("conn");
    let tenant = users::provision(&mut client, &new.identity())
        .await
        .expect("existing user")
        .tenant();
    let tx = client.transaction().await.expect("tx");
    for (kind, amount) in [
        (CreditKind::Purchase, -5),
        (CreditKind::Usage, 3),
        (CreditKind::Bonus, 0),
    ] {
        let change = CreditChange {
            tenant,
            kind,
            amount,
            reference: uuid::Uuid::new_v4().to_string(),
            description: "wrong sign".into(),
            stripe_payment_id: None,
        };
        let err = credits::apply(&tx, &change).await.expect_err("refused");
        assert_eq!(err.code, "validation_error");
    }
}

#[tokio::test]
async fn usage_can_take_the_balance_below_zero_and_it_shows() {
    let new = NewUser::new();
    let token = new.token();
    get("/auth/profile", &token).await;
    let pool = pool(2);
    let mut client = pool.get().await.expect("conn");
    let tenant = users::provision(&mut client, &new.identity())
        .await
        .expect("user")
        .tenant();
    apply_change(
        &pool,
        tenant,
        CreditKind::Usage,
        -18,
        format!("conv-{}", uuid::Uuid::new_v4()),
    )
    .await;
    let body = json(get("/billing/credits", &token).await).await;
    assert_eq!(body["credits"], -3);
    assert_eq!(body["status"], "exhausted");
    assert_eq!(body["low_credits"], true);
}

/// A tenant's ledger filtered on a type reads that type's entries, not every newer entry of the
/// others: here 20,000 usage entries are newer than the tenant's three purchases (its calls'
/// charges outnumber its purchases by thousands). The statement is cached, so it may run on its
/// generic plan at any time; the session forces that plan, and the database is the test's own,
/// so its statistics are this ledger's. With the types a parameter, the generic plan stepped
/// through the tenant's entries in id order and filtered them: some 20,000 blocks touched.
#[tokio::test]
async fn a_history_filtered_on_a_type_reads_that_types_entries() {
    let database = ScratchDatabase::create("ledger_types").await;
    let mut client = database.migrated_connection().await;
    let tenant = users::provision(&mut client, &NewUser::new().identity())
        .await
        .expect("user")
        .tenant();
    client
        .batch_execute(&format!(
            "INSERT INTO credit_transactions
                 (user_id, type, amount, balance_after, description, reference)
             SELECT '{tenant}', 'purchase', 1000, 1000 * i, 'Purchase', 'cs_' || i
             FROM generate_series(1, 3) i;
             INSERT INTO credit_transactions
                 (user_id, type, amount, balance_after, description, reference)
             SELECT '{tenant}', 'usage', -1, 3000 - i, 'Call 0:30', 'elevenlabs:conv_' || i
             FROM generate_series(1, 20000) i;
             INSERT INTO users (auth_subject) SELECT 'other_' || i FROM generate_series(1, 30) i;
             INSERT INTO credit_transactions
                 (user_id, type, amount, balance_after, description, reference)
             SELECT u.id, CASE WHEN i = 1 THEN 'purchase' ELSE 'usage' END,
                    CASE WHEN i = 1 THEN 100 ELSE -1 END, 100 - i, 'entry', 'ref_' || i
             FROM users u, generate_series(1, 50) i WHERE u.auth_subject LIKE 'other_%';
             ANALYZE credit_transactions;
             SET plan_cache_mode = force_generic_plan",
            tenant = tenant.as_uuid()
        ))
        .await
        .expect("a ledger of many usage entries");
    let history = async || {
        credits::history(&client, tenant, Some(CreditKind::Purchase), None, 20)
            .await
            .expect("the purchases")
    };
    history().await;
    let before = blocks_read(&client, "credit_transactions").await;
    let (purchases, total) = history().await;
    let read = blocks_read(&client, "credit_transactions").await - before;
    drop(client);
    database.drop().await;
    assert_eq!(purchases.len(), 3);
    assert!(purchases.iter().all(|entry| entry.amount == 1000));
    assert_eq!((total.count, total.exact), (3, true));
    assert!(
        read <= 20,
        "{read} blocks read for 3 entries and their count"
    );
}
