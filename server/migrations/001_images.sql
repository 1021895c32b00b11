-- Image metadata. The file itself lives in IMAGES_DIR under `filename`.
CREATE TABLE images (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    filename      text        NOT NULL UNIQUE,
    original_name text        NOT NULL,
    size          integer     NOT NULL CHECK (size > 0),
    width         integer     NOT NULL CHECK (width > 0),
    height        integer     NOT NULL CHECK (height > 0),
    format        text        NOT NULL CHECK (format IN ('JPEG', 'PNG', 'GIF')),
    owner_hash    text        NOT NULL,
    uploaded_at   timestamptz NOT NULL DEFAULT now()
);

-- The gallery lists newest first by id (ids grow with time), which the primary key serves.

-- Settings the app generates once and every backend process shares (e.g. the cookie secret).
CREATE TABLE app_secrets (
    name  text PRIMARY KEY,
    value text NOT NULL
);
