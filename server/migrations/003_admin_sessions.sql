-- Admin sessions live here, so logging out ends a session everywhere at once (a signed
-- cookie alone stays valid until it expires). Only a hash of the cookie's session id is
-- stored: a copy of this table opens no session. `password_tag` names the ADMIN_PASSWORD the
-- session was opened with; changing the password ends every session opened before.
CREATE TABLE admin_sessions (
    id_hash      text        PRIMARY KEY,
    password_tag text        NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX admin_sessions_expires_at ON admin_sessions (expires_at);
