-- A period's closed days' sums begin on its first day as of when they were read. The first
-- day moves on at midnight UTC and the last closed day at 02:00 (`admin::analytics::sql`), so
-- between the two, sums read the evening before still held their last closed day but began a
-- day early: the day that had just left the period was counted as well, in the calls, the
-- active tenants and the top ten. The sums now hold only while both their days are the
-- period's, and a period kept before this reads its sums again (its first day unknown).
ALTER TABLE closed_day_periods ADD COLUMN since date;
