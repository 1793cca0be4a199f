-- Chat leads. A chat's person is known by a phone number or email the conversation collected,
-- else by ElevenLabs' id for the end user; the last is kept on the lead so their next chat
-- finds it. Email lookups (chats, duplicate detection) read an index instead of the tenant's
-- leads.
ALTER TABLE leads ADD COLUMN elevenlabs_user_id text;
CREATE UNIQUE INDEX leads_user_elevenlabs_user_idx ON leads (user_id, elevenlabs_user_id)
    WHERE elevenlabs_user_id IS NOT NULL;
CREATE INDEX leads_user_email_idx ON leads (user_id, lower(email)) WHERE email IS NOT NULL;
