-- Export jobs still queued or running, by when they last moved: the reconciler fails those
-- that stopped (their message went to the dead-letter queue, or their job was never queued)
-- so their owner is not told `running` forever.
CREATE INDEX exports_in_progress_idx ON exports (updated_at) WHERE status IN ('queued', 'running');
