-- The admin's view of one tenant totals its purchases in the ledger
-- (`admin::users::sql::USAGE`). The ledger's index by tenant holds every entry: at ten million
-- calls, the largest tenant's million usage entries were read to find its thousand purchases.
-- An index of the purchases alone, with their amounts, answers from the index.
--
-- Built in the migration's transaction, it holds off writes to the ledger while it reads it
-- (seconds at ten million entries); on a large database, create it first with CREATE INDEX
-- CONCURRENTLY and this definition, which this migration then finds (as V0022).
CREATE INDEX IF NOT EXISTS credit_transactions_user_purchases_idx ON credit_transactions (user_id)
    INCLUDE (amount) WHERE type = 'purchase';
