-- A ledger reference is unique per tenant, not globally: one tenant's reference can neither
-- block another tenant's change nor make it read as a duplicate of someone else's entry.
ALTER TABLE credit_transactions DROP CONSTRAINT credit_transactions_type_reference_key;
ALTER TABLE credit_transactions
    ADD CONSTRAINT credit_transactions_user_type_reference_key UNIQUE (user_id, type, reference);
