-- Analytics that name no agent wait for their conversation to be stored (its transcription may
-- come after them), retried through the queue for 30 minutes. The wait counted from when the
-- event came in: after a database outage of 30 to 65 minutes (the queue keeps an event that
-- long), or replayed from the dead-letter queue after a longer one, such analytics were kept
-- unmatched at the processor's first look, though their transcription, queued beside them, was
-- stored moments later. The wait now counts from the processor's first look: kept here, and
-- dropped once the event is applied or kept unmatched.
CREATE TABLE awaited_events (
    event_key     text PRIMARY KEY,
    first_seen_at timestamptz NOT NULL DEFAULT now()
);
