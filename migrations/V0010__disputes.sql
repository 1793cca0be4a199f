-- Chargebacks. A dispute takes the disputed share of a purchase's credits back once, whichever
-- of its events arrives first, and flags the tenant for an administrator; a dispute closed in
-- our favour gives the credits back. Closed before opened (events out of order) is recorded
-- too, so the late opening event changes nothing.
CREATE TABLE disputes (
    id                  text PRIMARY KEY,
    purchase_id         uuid NOT NULL REFERENCES purchases (id),
    user_id             uuid NOT NULL REFERENCES users (id),
    amount              bigint NOT NULL,
    credits_withdrawn   bigint NOT NULL CHECK (credits_withdrawn >= 0),
    status              text NOT NULL CHECK (status IN ('open', 'won', 'lost')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX disputes_user_idx ON disputes (user_id, created_at DESC);

-- Why an administrator should look at this tenant (a disputed payment); null when nothing is due.
ALTER TABLE users ADD COLUMN review_reason text;
