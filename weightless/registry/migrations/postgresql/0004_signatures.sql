-- Signed torrents and verified publishers: an entry's signature, the keys
-- trusted for each publisher, and the operator's own mark apart from the computed `verified`.
ALTER TABLE registry ADD COLUMN publisher_key TEXT;      -- 64 hex Ed25519 public key
ALTER TABLE registry ADD COLUMN signature TEXT;          -- 128 hex, over the entry's hashes
ALTER TABLE registry ADD COLUMN operator_verified BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE registry SET operator_verified = verified;       -- until now verified was the mark
CREATE TABLE publisher_keys (
    publisher   TEXT NOT NULL,
    public_key  TEXT NOT NULL,                           -- 64 hex
    PRIMARY KEY (publisher, public_key)
);
CREATE INDEX registry_verified ON registry (verified, created_at, info_hash);
