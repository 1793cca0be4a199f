-- An agent an administrator deactivated stays inactive until an administrator reactivates it;
-- its owner cannot switch it back on.
ALTER TABLE agents ADD COLUMN deactivated_by_admin boolean NOT NULL DEFAULT false;
