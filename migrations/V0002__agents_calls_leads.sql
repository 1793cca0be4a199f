-- Agents map an ElevenLabs agent to its tenant: that mapping is how webhooks find their tenant.
CREATE TABLE agents (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                 uuid NOT NULL REFERENCES users (id),
    elevenlabs_agent_id     text NOT NULL UNIQUE,
    name                    text NOT NULL,
    type                    text NOT NULL DEFAULT 'call' CHECK (type IN ('call', 'chat')),
    phone_number_id         text,
    is_active               boolean NOT NULL DEFAULT true,
    deleted_at              timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agents_user_idx ON agents (user_id, created_at DESC);

CREATE TABLE contacts (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id),
    name            text NOT NULL,
    phone_number    text NOT NULL,            -- E.164
    email           text,
    company         text,
    notes           text,
    deleted_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX contacts_user_phone_idx ON contacts (user_id, phone_number) WHERE deleted_at IS NULL;

-- One person per tenant, found by normalized phone (or, for chats, by conversation).
CREATE TABLE leads (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid NOT NULL REFERENCES users (id),
    phone_number        text,                 -- E.164 when known
    name                text,
    email               text,
    company             text,
    contact_id          uuid REFERENCES contacts (id),
    agent_id            uuid REFERENCES agents (id),
    total_score         integer,
    lead_status_tag     text,
    interaction_count   integer NOT NULL DEFAULT 0,
    last_contact_at     timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX leads_user_phone_idx ON leads (user_id, phone_number) WHERE phone_number IS NOT NULL;

-- Calls and chats. Status only moves forward: in_progress -> completed | failed.
CREATE TABLE calls (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                     uuid NOT NULL REFERENCES users (id),
    agent_id                    uuid NOT NULL REFERENCES agents (id),
    elevenlabs_conversation_id  text NOT NULL UNIQUE,
    type                        text NOT NULL DEFAULT 'call' CHECK (type IN ('call', 'chat')),
    direction                   text CHECK (direction IN ('inbound', 'outbound')),
    status                      text NOT NULL CHECK (status IN ('in_progress', 'completed', 'failed')),
    phone_number                text,         -- the other party (E.164 when it parses)
    agent_number                text,
    contact_id                  uuid REFERENCES contacts (id),
    lead_id                     uuid REFERENCES leads (id),
    started_at                  timestamptz,
    duration_seconds            integer NOT NULL DEFAULT 0,
    credits_charged             bigint NOT NULL DEFAULT 0,
    cost                        bigint,       -- ElevenLabs' own cost figure, as reported
    call_successful             text,
    summary                     text,
    termination_reason          text,
    failure_reason              text,
    recording_key               text,         -- S3 object key of the MP3
    metadata                    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    completed_at                timestamptz
);
CREATE INDEX calls_user_created_idx ON calls (user_id, created_at DESC, id DESC);
CREATE INDEX calls_agent_created_idx ON calls (agent_id, created_at DESC);
CREATE INDEX calls_lead_idx ON calls (lead_id);

CREATE TABLE transcripts (
    call_id         uuid PRIMARY KEY REFERENCES calls (id),
    content         text NOT NULL,
    -- [{speaker: agent|user, text, timestamp (seconds into the call)}], in order
    speaker_segments jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE lead_analytics (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    call_id             uuid NOT NULL UNIQUE REFERENCES calls (id),
    intent_level        text,
    intent_score        integer,
    urgency_level       text,
    urgency_score       integer,
    budget_constraint   text,
    budget_score        integer,
    fit_alignment       text,
    fit_score           integer,
    engagement_health   text,
    engagement_score    integer,
    total_score         integer,
    lead_status_tag     text,
    reasoning           jsonb NOT NULL DEFAULT '{}'::jsonb,
    cta_interactions    jsonb NOT NULL DEFAULT '{}'::jsonb,
    raw_analysis        jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- event time of the analysis kept here: an older one never overwrites a newer one
    analyzed_at         timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Dashboard rollups, maintained by the processor in the same transaction as the call.
CREATE TABLE daily_agent_stats (
    user_id             uuid NOT NULL REFERENCES users (id),
    agent_id            uuid NOT NULL REFERENCES agents (id),
    day                 date NOT NULL,
    calls               integer NOT NULL DEFAULT 0,
    chats               integer NOT NULL DEFAULT 0,
    completed           integer NOT NULL DEFAULT 0,
    failed              integer NOT NULL DEFAULT 0,
    successful          integer NOT NULL DEFAULT 0,
    duration_seconds    bigint NOT NULL DEFAULT 0,
    credits_used        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, agent_id, day)
);

-- Every webhook event the processor has finished with, by its dedup key.
CREATE TABLE processed_events (
    event_key       text PRIMARY KEY,
    source          text NOT NULL,
    event_type      text NOT NULL,
    conversation_id text,
    outcome         text NOT NULL CHECK (outcome IN ('applied', 'duplicate', 'unmatched', 'rejected')),
    processed_at    timestamptz NOT NULL DEFAULT now()
);

-- Events whose agent we do not know: kept for later matching, never dropped.
CREATE TABLE unmatched_events (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_key           text NOT NULL UNIQUE,
    source              text NOT NULL,
    event_type          text NOT NULL,
    elevenlabs_agent_id text,
    conversation_id     text,
    payload             jsonb,
    raw_payload         text,
    reason              text NOT NULL,
    matched_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX unmatched_events_open_idx ON unmatched_events (created_at DESC) WHERE matched_at IS NULL;

-- Events that can never be processed (malformed): recorded once, acknowledged, not retried.
CREATE TABLE rejected_events (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_key       text NOT NULL UNIQUE,
    source          text NOT NULL,
    raw_payload     text NOT NULL,
    reason          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
