-- Routing flags a report within the border distance of another township or grid (layers/routing.py), so a
-- dispatcher can relocate it.
ALTER TABLE events ADD COLUMN near_border boolean;
