-- No JIT compilation in this database's sessions of the role that migrates it (the API's own,
-- deployed). Postgres compiles a statement when the planner's cost estimate passes
-- jit_above_cost, and a search's estimate counts the lookups it plans but seldom runs: the
-- largest tenant's count of a number prefix every call holds ran in 1.4 ms and spent 21 ms
-- compiling. The heaviest statement, the admin's credit totals over 30 days of the bench's
-- ledger, is faster without it too (316 → 230 ms). A role may set its own defaults; a session
-- takes them when it starts, so the pooler's server connections opened before this keep
-- compiling until they are replaced.
DO $$
BEGIN
    EXECUTE format('ALTER ROLE CURRENT_USER IN DATABASE %I SET jit = off', current_database());
END
$$;
