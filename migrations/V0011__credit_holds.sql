-- Every recipient of a batch (now or scheduled) holds one credit, a started minute, from the
-- moment the batch is submitted until its call's outcome is known: the processor settles the
-- hold when the call's webhook arrives (the usage is charged then), a cancelled batch releases
-- its holds, and a hold whose call never reported lapses at expires_at. Placing calls counts
-- the active holds against the balance, so one balance cannot back two batches.
CREATE TABLE credit_holds (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id             uuid NOT NULL REFERENCES users (id),
    batch_id            uuid NOT NULL REFERENCES call_batches (id),
    -- The recipient id sent to ElevenLabs (our contact id), echoed in the batch call's webhooks.
    recipient_id        text NOT NULL,
    phone_number        text NOT NULL,
    credits             bigint NOT NULL CHECK (credits > 0),
    status              text NOT NULL DEFAULT 'held'
                        CHECK (status IN ('held', 'settled', 'released', 'expired')),
    conversation_id     text,
    expires_at          timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    closed_at           timestamptz,
    UNIQUE (batch_id, recipient_id)
);
CREATE INDEX credit_holds_active_idx ON credit_holds (user_id, phone_number) WHERE status = 'held';
CREATE UNIQUE INDEX credit_holds_conversation_idx ON credit_holds (conversation_id)
    WHERE conversation_id IS NOT NULL;
