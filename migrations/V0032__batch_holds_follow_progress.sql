-- A batch's holds lapse six hours after its start or after its last call that reported,
-- whichever is later: a batch that takes longer than six hours to call everyone (ElevenLabs
-- places a few calls at a time) keeps holding the credits of the recipients it has yet to call.
ALTER TABLE call_batches ADD COLUMN last_settled_at timestamptz;
