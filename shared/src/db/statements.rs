//! Checked SQL: every statement the crate runs is a named constant, and one test prepares all
//! of them against the migrated schema, so a wrong table, column or type fails in seconds
//! instead of in whichever request happens to run it.
//!
//! - A module's statements live in its `sql` section, `pub mod sql { crate::db::statements! {
//!   ... } }` (or a `sql.rs` file beside it), as `pub const NAME = "...";`, with `concat!` and
//!   a column-list macro where statements share columns. Call sites pass `sql::NAME`, never a
//!   literal or a `format!`.
//! - A statement assembled from a [`Filter`](super::filter::Filter) adds its fullest variant
//!   (every filter on, a cursor) under `fullest { NAME = || ..., }` in the same block.
//! - Each block's `sql::STATEMENTS` is listed in `checked_sql::REGISTRY` (src/checked_sql.rs),
//!   whose guard (`cargo test -p shared checked_sql`) fails on SQL at a call site or outside a
//!   `sql` section, and on a block missing from the registry. The check
//!   (`scripts/test --test it checked_sql`, or `DATABASE_URL=<migrated db> cargo test --test it
//!   checked_sql`) prepares every statement and names each one Postgres refuses, with its
//!   message.
//! - Rows are decoded with `try_get` (a mismatch is an error, never a panic).

use std::{borrow::Cow, future::Future};

use deadpool_postgres::GenericClient;
use tokio_postgres::{types::ToSql, Error, GenericClient as _, Row, RowStream};

pub struct Statement {
    /// `module::path::NAME`: what a failed check reports.
    pub name: &'static str,
    pub file: &'static str,
    pub text: Text,
}

pub enum Text {
    Fixed(&'static str),
    /// A statement assembled at run time, rendered in its fullest variant.
    Fullest(fn() -> String),
}

impl Statement {
    pub fn text(&self) -> Cow<'static, str> {
        match self.text {
            Text::Fixed(text) => Cow::Borrowed(text),
            Text::Fullest(render) => Cow::Owned(render()),
        }
    }
}

/// Declares a module's statements as constants, and `STATEMENTS`, the list of all of them
/// (fullest variants included) that `checked_sql::REGISTRY` (src/checked_sql.rs) names.
macro_rules! statements {
    (
        $( $(#[$meta:meta])* pub const $name:ident = $text:expr; )*
        $( fullest { $( $(#[$fullest_meta:meta])* $fullest:ident = $render:expr ),* $(,)? } )?
    ) => {
        $( $(#[$meta])* pub const $name: &str = $text; )*

        /// Every statement of this module, for the schema check (src/checked_sql.rs).
        pub const STATEMENTS: &[$crate::db::statements::Statement] = &[
            $( $crate::db::statements::Statement {
                name: concat!(module_path!(), "::", stringify!($name)),
                file: file!(),
                text: $crate::db::statements::Text::Fixed($name),
            }, )*
            $($( $crate::db::statements::Statement {
                name: concat!(module_path!(), "::", stringify!($fullest)),
                file: file!(),
                text: $crate::db::statements::Text::Fullest($render),
            }, )*)?
        ];
    };
}
pub(crate) use statements;

/// Runs a named statement through the connection's statement cache: Postgres parses and plans
/// it once per connection, and each later run is one round trip (Bind/Execute) instead of two
/// (Parse/Describe, then Bind/Execute). Behind a transaction pooler this needs protocol-level
/// prepared statements to be tracked across server connections (PgBouncer 1.21+ with
/// `max_prepared_statements`, as Neon's pooler runs it). Every statement on a request's or an
/// event's path runs through these, but a search's that may look its fragment up
/// ([`PlannedPerRun`]).
pub trait Cached: GenericClient {
    fn cached_query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send + 'a;

    fn cached_query_one<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Row, Error>> + Send + 'a;

    fn cached_query_opt<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Option<Row>, Error>> + Send + 'a;

    fn cached_execute<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, Error>> + Send + 'a;

    /// Makes sure `statements` are in the cache (one round trip for all that are not yet).
    ///
    /// Pipelining rests on it: tokio-postgres sends a request when its future is first polled
    /// and Postgres runs requests in the order they arrive, so statements started together
    /// (`futures::try_join!`) after this run in the order they are written, in one round trip.
    /// A statement not yet prepared would first wait for its Parse and be sent late.
    fn prepare_all<'a>(
        &'a self,
        statements: &'a [&'a str],
    ) -> impl Future<Output = Result<(), Error>> + Send + 'a;
}

impl<C: GenericClient> Cached for C {
    async fn cached_query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        self.query(&self.prepare_cached(sql).await?, params).await
    }

    async fn cached_query_one<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> Result<Row, Error> {
        self.query_one(&self.prepare_cached(sql).await?, params)
            .await
    }

    async fn cached_query_opt<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        self.query_opt(&self.prepare_cached(sql).await?, params)
            .await
    }

    async fn cached_execute<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> Result<u64, Error> {
        self.execute(&self.prepare_cached(sql).await?, params).await
    }

    async fn prepare_all<'a>(&'a self, statements: &'a [&'a str]) -> Result<(), Error> {
        futures::future::try_join_all(statements.iter().map(|sql| self.prepare_cached(sql)))
            .await?;
        Ok(())
    }
}

/// A client that can also run a statement planned for the values of that one run.
///
/// A cached statement runs on a plan made for any values once Postgres finds it no costlier
/// than the plans it made for the first five runs' values. A search cannot share one: its
/// pattern decides whether reading the tenant's rows newest first finds a page in a few
/// rows, or whether its trigram indexes should find the few rows that match. Postgres plans
/// its unnamed statement for the values bound to it, every time; a named one, even prepared
/// afresh, shares its plan behind PgBouncer, which keeps one server statement per text.
pub trait PlannedPerRun: GenericClient + Sync {
    /// The tokio-postgres client or transaction underneath, which sends unnamed statements.
    fn raw(&self) -> &(impl tokio_postgres::GenericClient + Sync);
}

impl PlannedPerRun for deadpool_postgres::Client {
    fn raw(&self) -> &(impl tokio_postgres::GenericClient + Sync) {
        let client: &tokio_postgres::Client = self;
        client
    }
}

impl PlannedPerRun for deadpool_postgres::Transaction<'_> {
    fn raw(&self) -> &(impl tokio_postgres::GenericClient + Sync) {
        let transaction: &tokio_postgres::Transaction<'_> = self;
        transaction
    }
}

/// Runs `sql` planned for `params` (an unnamed statement: Parse, Bind and Execute in one round
/// trip), its parameter types taken from the statement's cached preparation.
pub async fn query_planned_for_values(
    db: &impl PlannedPerRun,
    sql: &str,
    params: Vec<&(dyn ToSql + Sync)>,
) -> Result<RowStream, Error> {
    let types = db.prepare_cached(sql).await?.params().to_vec();
    db.raw()
        .query_typed_raw(sql, params.into_iter().zip(types))
        .await
}
