-- Thumbnails and an O(1) gallery total. Additive only: older code keeps working.

-- Size of the 320 px WebP thumbnail (thumbs/<hex>-320.webp, with a 2x twin -640.webp);
-- NULL while an image has none (`python -m server thumbnails` makes the missing ones).
ALTER TABLE images
    ADD COLUMN thumb_width  integer CHECK (thumb_width > 0),
    ADD COLUMN thumb_height integer CHECK (thumb_height > 0);

-- The number of rows in `images`, kept by statement-level triggers in the same transaction
-- as the change. The UPDATE locks the one row until commit, so concurrent writers queue
-- for it and the value is exact at every commit; one UPDATE per statement (not per row)
-- keeps bulk loads (make seed) cheap.
CREATE TABLE image_total (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),
    total bigint  NOT NULL CHECK (total >= 0)
);

CREATE FUNCTION image_total_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE image_total SET total = total + (SELECT count(*) FROM inserted);
    RETURN NULL;
END $$;

CREATE FUNCTION image_total_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE image_total SET total = total - (SELECT count(*) FROM deleted);
    RETURN NULL;
END $$;

CREATE FUNCTION image_total_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE image_total SET total = 0;
    RETURN NULL;
END $$;

-- Creating the triggers locks `images` against writes until this migration commits, so the
-- count taken below cannot miss a concurrent insert or delete.
CREATE TRIGGER image_total_insert AFTER INSERT ON images
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT
    EXECUTE FUNCTION image_total_after_insert();
CREATE TRIGGER image_total_delete AFTER DELETE ON images
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT
    EXECUTE FUNCTION image_total_after_delete();
CREATE TRIGGER image_total_truncate AFTER TRUNCATE ON images
    FOR EACH STATEMENT EXECUTE FUNCTION image_total_after_truncate();

INSERT INTO image_total (total) SELECT count(*) FROM images;
