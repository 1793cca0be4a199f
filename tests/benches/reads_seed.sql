-- Seeds the read benchmark's dataset (tests/benches/reads.rs runs it in one transaction, step by
-- step): {tenants} tenants, {calls} calls over 180 days with a skewed share per tenant (the
-- largest has {largest}), a transcript for one call in ten, an analysis for most, one lead per distinct
-- phone number of a tenant, and the rollups computed from those rows as the processor keeps
-- them. Set-based; random draws are stored once per call so every derived value agrees.

-- step: tenants
CREATE TABLE bench_seed (
    dataset     text PRIMARY KEY,
    calls       bigint NOT NULL,
    seconds     double precision NOT NULL,
    seeded_at   timestamptz NOT NULL DEFAULT now()
);
-- Rank 1 is the largest; the rest share what is left by a power law (rank^-0.8).
CREATE TEMP TABLE seed_tenants AS
WITH weights AS (
    SELECT r, CASE WHEN r = 1 THEN 0 ELSE power(r, -0.8) END AS w
    FROM generate_series(1, {tenants}) r
)
SELECT r AS rank,
       CASE WHEN r = 1 THEN {largest}
            ELSE greatest(1, floor(({calls} - {largest}) * w / sum(w) OVER ()))::int END AS calls,
       1 + r % 3 AS agents,
       NULL::uuid AS user_id,
       NULL::uuid[] AS agent_ids
FROM weights;
UPDATE seed_tenants SET calls = calls + ({calls} - (SELECT sum(calls) FROM seed_tenants)) WHERE rank = 2;
INSERT INTO users (auth_subject, email, name, credits, stats_version)
SELECT 'bench-reads-' || rank, 'bench-reads-' || rank || '@example.test', 'Bench tenant ' || rank, 1000000, 1
FROM seed_tenants;
UPDATE seed_tenants t SET user_id = u.id FROM users u WHERE u.auth_subject = 'bench-reads-' || t.rank;
INSERT INTO agents (user_id, elevenlabs_agent_id, name, type, created_at)
SELECT t.user_id, 'agent_bench_reads_' || t.rank || '_' || a, 'Agent ' || a, 'call',
       now() - interval '200 days'
FROM seed_tenants t, generate_series(1, t.agents) a;
UPDATE seed_tenants t SET agent_ids = (SELECT array_agg(a.id ORDER BY a.elevenlabs_agent_id)
                                       FROM agents a WHERE a.user_id = t.user_id);

-- step: indexes dropped
-- Loading into bare tables and building their indexes once afterwards is several times quicker
-- at ten million calls than keeping every index up to date row by row; the indexes that back
-- constraints (primary keys, unique keys the foreign keys reference) stay.
SET LOCAL work_mem = '256MB';
CREATE TEMP TABLE seed_indexes AS
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
FROM pg_index i
WHERE i.indrelid IN ('calls'::regclass, 'transcripts'::regclass, 'lead_analytics'::regclass,
                     'leads'::regclass)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid);
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT name FROM seed_indexes LOOP
        EXECUTE 'DROP INDEX ' || r.name;
    END LOOP;
END $$;

-- step: calls staged
CREATE TEMP TABLE seed_calls AS
SELECT raw.*,
       raw.r_kind < 0.05 AS chat,
       CASE WHEN raw.r_kind < 0.05 THEN NULL
            ELSE '+1' || (2000000000::bigint + raw.rank * 1000000::bigint
                          + floor(greatest(1, raw.tenant_calls / 3) * raw.r_lead ^ 2)::bigint)::text
       END AS phone_number,
       now() - raw.r_time * interval '180 days' AS started_at,
       20 + floor(raw.r_duration * 400)::int AS duration,
       CASE WHEN raw.r_status < 0.08 THEN 'failed' ELSE 'completed' END AS status,
       CASE WHEN raw.r_status < 0.08 THEN 'failure'
            WHEN raw.r_status < 0.75 THEN 'success' ELSE 'failure' END AS call_successful,
       raw.r_status >= 0.08 AND raw.r_analysis < 0.9 AS analyzed,
       floor(raw.r_score * 101)::int AS total_score,
       CASE WHEN raw.r_score >= 0.7 THEN 'hot' WHEN raw.r_score >= 0.4 THEN 'warm' ELSE 'cold' END
           AS lead_status_tag,
       raw.agent_ids[1 + raw.i % array_length(raw.agent_ids, 1)] AS agent_id,
       now() - raw.r_time * interval '180 days' + (20 + floor(raw.r_duration * 400)::int) * interval '1 second'
           AS created_at
FROM (
    SELECT gen_random_uuid() AS id, t.user_id, t.rank, t.calls AS tenant_calls, i,
           t.agent_ids,
           random() AS r_kind, random() AS r_lead, random() AS r_time, random() AS r_duration,
           random() AS r_status, random() AS r_analysis, random() AS r_score
    FROM seed_tenants t, generate_series(1, t.calls) i
    OFFSET 0
) raw;

-- step: leads
INSERT INTO leads (user_id, phone_number, name, agent_id, total_score, lead_status_tag,
                   interaction_count, last_contact_at, created_at, updated_at)
SELECT user_id, phone_number, 'Lead ' || right(phone_number, 6),
       (array_agg(agent_id ORDER BY created_at))[1],
       (array_agg(total_score ORDER BY created_at DESC) FILTER (WHERE analyzed))[1],
       (array_agg(lead_status_tag ORDER BY created_at DESC) FILTER (WHERE analyzed))[1],
       count(*), max(created_at), min(created_at), max(created_at)
FROM seed_calls
WHERE phone_number IS NOT NULL
GROUP BY user_id, phone_number
ORDER BY min(created_at);

-- step: contacts
-- The people the tenants call, as uploaded before the calls: one contact per lead's number
-- (every lead here has one), a day to a month before its first call, a third of them at
-- "Acme ..." companies. Added after datasets were kept: a no-op where contacts exist, so it
-- runs on a kept dataset too (and "call contacts" then links their calls).
INSERT INTO contacts (user_id, name, phone_number, email, company, created_at, updated_at)
SELECT l.user_id, 'Contact ' || right(l.phone_number, 6), l.phone_number,
       'contact' || right(l.phone_number, 6) || '@example.test',
       CASE WHEN hashtext(l.phone_number) % 3 = 0 THEN 'Acme ' ELSE 'Globex ' END
           || (abs(hashtext(l.phone_number)) % 1000),
       l.created_at - interval '1 day' * (1 + abs(hashtext(l.id::text)) % 30),
       l.created_at
FROM leads l
WHERE l.phone_number IS NOT NULL
  AND l.user_id IN (SELECT id FROM users WHERE auth_subject LIKE 'bench-reads-%')
  AND NOT EXISTS (SELECT FROM contacts c
                  JOIN users u ON u.id = c.user_id AND u.auth_subject LIKE 'bench-reads-%')
ORDER BY l.created_at;
ANALYZE contacts;

-- step: calls
-- In time order, as they arrive: a tenant's calls are spread over the whole table.
INSERT INTO calls (id, user_id, agent_id, elevenlabs_conversation_id, type, direction, status,
                   phone_number, agent_number, contact_id, lead_id, started_at, duration_seconds,
                   credits_charged, call_successful, summary, termination_reason, recording_key,
                   created_at, updated_at, completed_at)
SELECT s.id, s.user_id, s.agent_id, 'conv_bench_reads_' || s.rank || '_' || s.i,
       CASE WHEN s.chat THEN 'chat' ELSE 'call' END,
       CASE WHEN s.chat THEN NULL WHEN s.i % 4 = 0 THEN 'inbound' ELSE 'outbound' END,
       s.status, s.phone_number, CASE WHEN s.chat THEN NULL ELSE '+15550100' || (100 + s.rank % 900) END,
       ct.id, l.id, s.started_at, s.duration, ceil(s.duration / 60.0)::bigint, s.call_successful,
       'The caller asked about pricing and availability; the agent offered a demo and a follow-up call.',
       'end_call tool was called',
       -- A completed call has its MP3 (as the post-call audio webhook stores it): the lists
       -- presign a link for each.
       CASE WHEN NOT s.chat AND s.status = 'completed'
            THEN 'recordings/' || s.user_id || '/conv_bench_reads_' || s.rank || '_' || s.i || '.mp3' END,
       s.created_at, s.created_at, s.created_at
FROM seed_calls s
LEFT JOIN leads l ON l.user_id = s.user_id AND l.phone_number = s.phone_number
LEFT JOIN contacts ct ON ct.user_id = s.user_id AND ct.phone_number = s.phone_number
                     AND ct.deleted_at IS NULL
ORDER BY s.created_at;

-- step: transcripts
-- One call in ten has one (the transcript is only read by a call's own page): the dataset's
-- size stays in the calls, which every list reads.
INSERT INTO transcripts (call_id, content, speaker_segments, created_at, updated_at)
SELECT id,
       E'agent: Hello, this is Agent calling about your enquiry.\nuser: Hi, yes, I wanted to know the price.\n'
       || E'agent: It starts at 49 a month; shall I book a demo?\nuser: Sure, next Tuesday works.',
       jsonb_build_array(
           jsonb_build_object('speaker', 'agent', 'text', 'Hello, this is Agent calling about your enquiry.', 'timestamp', 0),
           jsonb_build_object('speaker', 'user', 'text', 'Hi, yes, I wanted to know the price.', 'timestamp', 4),
           jsonb_build_object('speaker', 'agent', 'text', 'It starts at 49 a month; shall I book a demo?', 'timestamp', 9),
           jsonb_build_object('speaker', 'user', 'text', 'Sure, next Tuesday works.', 'timestamp', 15)),
       created_at, created_at
FROM seed_calls
WHERE i % 10 = 0
ORDER BY created_at;

-- step: lead analytics
INSERT INTO lead_analytics (call_id, intent_level, intent_score, urgency_level, urgency_score,
                            budget_constraint, budget_score, fit_alignment, fit_score,
                            engagement_health, engagement_score, total_score, lead_status_tag,
                            reasoning, cta_interactions, analyzed_at, created_at, updated_at, user_id)
SELECT id, lead_status_tag, total_score / 5, 'medium', total_score / 5, 'flexible', total_score / 5,
       'good', total_score / 5, 'engaged', total_score - 4 * (total_score / 5),
       total_score, lead_status_tag,
       jsonb_build_object('intent', 'Asked for the price', 'urgency', 'Wants a demo next week'),
       jsonb_build_object('pricing_clicked', r_analysis < 0.5, 'demo_clicked', r_analysis < 0.3,
                          'followup_clicked', r_analysis < 0.2, 'sample_clicked', r_analysis < 0.1,
                          'escalated_to_human', r_analysis < 0.05),
       created_at, created_at, created_at, user_id
FROM seed_calls
WHERE analyzed
ORDER BY created_at;

-- step: indexes
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT def FROM seed_indexes LOOP
        EXECUTE r.def;
    END LOOP;
END $$;

-- step: rollups
-- As the processor keeps them (V0012's definition, V0035's), and where it keeps them: a row is
-- written with its day's first call, so the table holds the rows in the order of their days.
-- The tenants' days follow (V0035's trigger).
INSERT INTO daily_agent_stats
SELECT * FROM daily_agent_stats_recomputed(ARRAY(SELECT user_id FROM seed_tenants)) ORDER BY day;
INSERT INTO daily_lead_stats
SELECT * FROM daily_lead_stats_recomputed(ARRAY(SELECT user_id FROM seed_tenants)) ORDER BY day;

-- step: call contacts
-- A call is its tenant's contact's with its number, as the processor links them. Added after
-- datasets were kept: on a kept dataset whose calls have no contact yet it links them (18 min
-- for 9.5 million calls, then the indexes V0021 builds); anywhere else it does nothing.
DO $$
DECLARE linked bigint;
BEGIN
    IF EXISTS (SELECT FROM calls c JOIN users u ON u.id = c.user_id
               WHERE u.auth_subject LIKE 'bench-reads-%' AND c.contact_id IS NOT NULL) THEN
        RETURN;
    END IF;
    UPDATE calls c SET contact_id = ct.id
    FROM contacts ct
    WHERE ct.user_id = c.user_id AND ct.phone_number = c.phone_number AND ct.deleted_at IS NULL
      AND c.user_id IN (SELECT id FROM users WHERE auth_subject LIKE 'bench-reads-%');
    GET DIAGNOSTICS linked = ROW_COUNT;
    IF linked > 0 THEN
        ANALYZE calls;
    END IF;
END $$;

-- step: ledger
-- What the tenants' calls were charged, as the processor charges them (one usage entry per
-- completed call), the purchases that paid for them (one before every 1,000th call) and the
-- signup bonus, in the order they were written. Added after datasets were kept: on a kept
-- dataset without a ledger it writes one; anywhere else it does nothing.
DO $$
BEGIN
    IF EXISTS (SELECT FROM credit_transactions t JOIN users u ON u.id = t.user_id
               WHERE u.auth_subject LIKE 'bench-reads-%') THEN
        RETURN;
    END IF;
    CREATE TEMP TABLE seed_ledger ON COMMIT DROP AS
    SELECT c.user_id, c.created_at, c.credits_charged, c.duration_seconds, c.type, c.phone_number,
           c.elevenlabs_conversation_id, c.status,
           row_number() OVER (PARTITION BY c.user_id ORDER BY c.created_at, c.id) AS n
    FROM calls c
    WHERE c.user_id IN (SELECT id FROM users WHERE auth_subject LIKE 'bench-reads-%');
    INSERT INTO credit_transactions
        (user_id, type, amount, balance_after, description, reference, stripe_payment_id,
         created_at)
    SELECT user_id, type, amount,
           sum(amount) OVER (PARTITION BY user_id ORDER BY created_at, reference
                             ROWS UNBOUNDED PRECEDING),
           description, reference, stripe_payment_id, created_at
    FROM (
        SELECT user_id, 'bonus' AS type, 100::bigint AS amount, 'Welcome bonus' AS description,
               'signup:' || user_id AS reference, NULL AS stripe_payment_id,
               created_at - interval '1 day' AS created_at
        FROM seed_ledger WHERE n = 1
        UNION ALL
        SELECT user_id, 'purchase', 10000, 'Purchase: Growth', 'cs_bench_' || user_id || '_' || n,
               'pi_bench_' || user_id || '_' || n, created_at - interval '1 minute'
        FROM seed_ledger WHERE n % 1000 = 1
        UNION ALL
        SELECT user_id, 'usage', -credits_charged,
               CASE WHEN type = 'chat' THEN 'Chat ' ELSE 'Call ' END
                   || duration_seconds / 60 || ':' || lpad((duration_seconds % 60)::text, 2, '0')
                   || coalesce(' with ' || phone_number, ''),
               'elevenlabs:' || elevenlabs_conversation_id, NULL, created_at
        FROM seed_ledger WHERE status = 'completed' AND credits_charged > 0
    ) entries
    ORDER BY created_at, reference;
    ANALYZE credit_transactions;
END $$;

-- step: purchases
-- The Checkout purchases behind the ledger's purchase entries, paid a moment after their
-- session was made (the entry is written when Stripe says it is paid), and a checkout left to
-- expire before every third of them. Added after datasets were kept: on a kept dataset
-- without purchases it writes them; anywhere else it does nothing.
DO $$
BEGIN
    IF EXISTS (SELECT FROM purchases p JOIN users u ON u.id = p.user_id
               WHERE u.auth_subject LIKE 'bench-reads-%') THEN
        RETURN;
    END IF;
    INSERT INTO purchases (user_id, package_id, package_name, credits, amount, currency, status,
        stripe_session_id, stripe_payment_intent_id, created_at, updated_at, paid_at)
    SELECT * FROM (
        SELECT t.user_id, 'growth', 'Growth', t.amount, t.amount * 9, 'usd', 'paid', t.reference,
            t.stripe_payment_id, t.created_at - interval '2 minutes', t.created_at, t.created_at
        FROM credit_transactions t JOIN users u ON u.id = t.user_id
        WHERE t.type = 'purchase' AND u.auth_subject LIKE 'bench-reads-%'
        UNION ALL
        SELECT t.user_id, 'growth', 'Growth', t.amount, t.amount * 9, 'usd', 'expired',
            'cs_bench_expired_' || t.id, NULL, t.created_at - interval '1 day',
            t.created_at - interval '1 hour', NULL
        FROM credit_transactions t JOIN users u ON u.id = t.user_id
        WHERE t.type = 'purchase' AND u.auth_subject LIKE 'bench-reads-%' AND t.id % 3 = 0
    ) checkouts (user_id, package_id, package_name, credits, amount, currency, status,
        stripe_session_id, stripe_payment_intent_id, created_at, updated_at, paid_at)
    ORDER BY created_at;
    ANALYZE purchases;
END $$;
