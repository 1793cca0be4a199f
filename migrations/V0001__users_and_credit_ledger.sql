-- Users are the tenants. Their credit balance is kept here and changed only together with an
-- append-only ledger row (see shared/src/credits), in one transaction.
CREATE TABLE users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    auth_subject    text NOT NULL UNIQUE,
    email           text,
    name            text,
    auth_provider   text NOT NULL DEFAULT 'email'
                    CHECK (auth_provider IN ('email', 'google', 'linkedin')),
    role            text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    credits         bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_email_idx ON users (lower(email));

CREATE TABLE credit_transactions (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id             uuid NOT NULL REFERENCES users (id),
    type                text NOT NULL
                        CHECK (type IN ('purchase', 'usage', 'bonus', 'admin_adjustment', 'refund')),
    amount              bigint NOT NULL CHECK (amount <> 0),
    balance_after       bigint NOT NULL,
    description         text NOT NULL,
    -- The external event that caused the change (conversation id, checkout session, ...):
    -- the same reference is never applied twice.
    reference           text NOT NULL,
    stripe_payment_id   text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (type, reference)
);
CREATE INDEX credit_transactions_user_idx ON credit_transactions (user_id, id DESC);

-- The ledger is append-only.
CREATE FUNCTION forbid_ledger_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credit_transactions is append-only';
END $$;
CREATE TRIGGER credit_transactions_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON credit_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_ledger_rewrite();
