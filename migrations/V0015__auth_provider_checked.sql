-- When the account's sign-in provider was last read from Stack Auth (null: never, so the next
-- profile read asks).
ALTER TABLE users ADD COLUMN auth_provider_checked_at timestamptz;
