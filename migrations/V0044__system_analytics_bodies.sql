-- The admin's snapshots (`admin::analytics::cached`) kept as the JSON a request is answered with:
-- answering from `figures` parsed 14 KB of figures into their types and wrote them out again,
-- a quarter of a 0.4 ms answer for 365 days. `shape` fingerprints the figures' schema, so a body
-- kept by a release with other figures is read afresh rather than sent. This release leaves
-- `figures` NULL, and the release before writes it (leaving `body` as it was): each reads a
-- snapshot only when its own column holds it, so neither answers with what the other kept,
-- while both run during a deploy.
ALTER TABLE system_analytics
    ALTER COLUMN figures DROP NOT NULL,
    ADD COLUMN body text,
    ADD COLUMN shape bigint;
