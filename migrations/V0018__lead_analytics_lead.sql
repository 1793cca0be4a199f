-- Each analysis' lead (its call's), so a lead's latest analysis is one probe of an index in
-- analysis order: the profile and the lead list looked it up through every call of the lead,
-- one probe of lead_analytics per call (a lead with 1,666 calls: 8,076 buffers, about 10 ms
-- warm, the most of the busiest lead's profile).
--
-- The column mirrors calls.lead_id, which several writers set or move (the processor as a call
-- is transcribed, lead merges, calls placed to a lead): two triggers keep it, so no writer can
-- forget it. An analysis takes its call's lead when stored; a call's new lead moves its analysis.
ALTER TABLE lead_analytics ADD COLUMN lead_id uuid;
UPDATE lead_analytics la SET lead_id = c.lead_id
FROM calls c WHERE c.id = la.call_id AND c.lead_id IS NOT NULL;
CREATE INDEX lead_analytics_lead_idx ON lead_analytics (lead_id, analyzed_at DESC)
    WHERE lead_id IS NOT NULL;

CREATE FUNCTION lead_analytics_take_call_lead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.lead_id := (SELECT lead_id FROM calls WHERE id = NEW.call_id);
    RETURN NEW;
END $$;
CREATE TRIGGER lead_analytics_lead_of_call
    BEFORE INSERT ON lead_analytics
    FOR EACH ROW EXECUTE FUNCTION lead_analytics_take_call_lead();

CREATE FUNCTION calls_move_analysis_lead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE lead_analytics SET lead_id = NEW.lead_id WHERE call_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER calls_lead_moves_analysis
    AFTER UPDATE OF lead_id ON calls
    FOR EACH ROW WHEN (OLD.lead_id IS DISTINCT FROM NEW.lead_id)
    EXECUTE FUNCTION calls_move_analysis_lead();
