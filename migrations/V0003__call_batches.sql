-- Batch calls submitted to ElevenLabs; their calls come back through the webhooks one by one.
CREATE TABLE call_batches (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                 uuid NOT NULL REFERENCES users (id),
    agent_id                uuid NOT NULL REFERENCES agents (id),
    elevenlabs_batch_id     text NOT NULL UNIQUE,
    name                    text NOT NULL,
    status                  text NOT NULL,
    recipients              integer NOT NULL,
    scheduled_at            timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX call_batches_user_idx ON call_batches (user_id, created_at DESC);

-- Outbound calls still ringing hold back credits from the next ones (see calls::outbound).
CREATE INDEX calls_user_in_progress_idx ON calls (user_id, created_at)
    WHERE status = 'in_progress' AND direction = 'outbound';
