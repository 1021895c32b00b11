-- A version for the gallery, bumped by every write the app makes (upload, delete, thumbnails
-- recorded) in that write's transaction. It lives in image_total's one row, which the writes
-- lock until commit anyway, so versions are in commit order: the order in which LISTEN
-- delivers their events. A backend's page cache is as new as the last version it heard of.
ALTER TABLE image_total ADD COLUMN version bigint NOT NULL DEFAULT 0;
