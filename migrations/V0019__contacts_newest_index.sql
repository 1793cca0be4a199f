-- The contacts list's order, newest first, per tenant: a page reads its rows off this index
-- instead of sorting every live contact of the tenant first. For a tenant of 291,493 contacts
-- (scripts/bench-reads at ten million calls), a page took 185 ms and its bounded count 47 ms;
-- with the index, a request's statements (the user lookup, the page, the count) take 2.1 ms.
CREATE INDEX contacts_user_newest_idx ON contacts (user_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
