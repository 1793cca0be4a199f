-- Settings an admin may change at run time (credit packages, thresholds, limits): one JSON
-- value per key, validated by the application before it is written. Absent keys take the
-- application's defaults.
CREATE TABLE settings (
    key         text PRIMARY KEY,
    value       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  uuid REFERENCES users (id)
);

-- One Stripe Checkout purchase of a credit package. The credits and the amount come from the
-- package at the time of purchase, never from the client; the webhook checks Stripe's amount
-- against them.
CREATE TABLE purchases (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid NOT NULL REFERENCES users (id),
    package_id          text NOT NULL,
    package_name        text NOT NULL,
    credits             bigint NOT NULL CHECK (credits > 0),
    -- In the currency's minor unit (cents).
    amount              bigint NOT NULL CHECK (amount > 0),
    currency            text NOT NULL,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'processing', 'paid', 'failed', 'expired', 'review')),
    -- Why a purchase needs a person to look at it (status review).
    review_reason       text,
    stripe_session_id   text UNIQUE,
    stripe_payment_intent_id text,
    checkout_url        text,
    -- Cumulative, as Stripe reports it on the charge; credits_refunded is what the ledger took back.
    amount_refunded     bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
    credits_refunded    bigint NOT NULL DEFAULT 0 CHECK (credits_refunded >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    paid_at             timestamptz
);
CREATE INDEX purchases_user_idx ON purchases (user_id, created_at DESC);
CREATE INDEX purchases_payment_intent_idx ON purchases (stripe_payment_intent_id)
    WHERE stripe_payment_intent_id IS NOT NULL;
CREATE INDEX purchases_status_idx ON purchases (status, created_at DESC);

-- The low-credit warning goes out once per crossing below the threshold; this is reset when
-- the balance is back at or above it.
ALTER TABLE users ADD COLUMN low_credit_warned boolean NOT NULL DEFAULT false;

-- Emails are written here in the transaction of what caused them and sent afterwards, so a
-- slow or failing SMTP server never fails or delays a request or a webhook, and nothing is lost.
CREATE TABLE email_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         uuid REFERENCES users (id),
    kind            text NOT NULL CHECK (kind IN ('welcome', 'receipt', 'low_credit')),
    -- The same cause never queues the same email twice (welcome:<user>, receipt:<purchase>, ...).
    dedup_key       text NOT NULL UNIQUE,
    recipient       text NOT NULL,
    -- What the template needs (credits, amounts, balance); rendered when sent.
    data            jsonb NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX email_outbox_due_idx ON email_outbox (next_attempt_at) WHERE status = 'pending';

-- Stripe events the processor acknowledges without a change (types we do not act on), and
-- payments it holds for a person to review (an amount that does not match the package).
ALTER TABLE processed_events DROP CONSTRAINT processed_events_outcome_check;
ALTER TABLE processed_events ADD CONSTRAINT processed_events_outcome_check
    CHECK (outcome IN ('applied', 'duplicate', 'unmatched', 'rejected', 'ignored', 'review'));
